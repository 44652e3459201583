import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { classifyGoogleError, type GoogleAccount } from "../../adapters/google/index.js";
import {
  AuthError,
  NotFoundError,
  ProtocolError,
  StateError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import { createHttpClient } from "../../src/http/index.js";
import { checkStateErrors } from "../../src/testing/index.js";
import { GoogleEmulator, googleError } from "./emulator.js";
import { account, queries, recorder } from "./helpers.js";

let emulator: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  emulator.options.maxPageSize = 2;
  emulator.options.tokens = undefined;
  emulator.model.addCalendar("primary");
});

const EVENTS = /\/calendars\/primary\/events$/;

describe("calendar events", () => {
  let google: GoogleAccount;
  beforeEach(() => {
    google = account(emulator);
  });
  afterEach(async () => {
    await google.close();
  });

  it("pages a full sync, keeps the same syncToken while paging a delta, takes nextSyncToken from the last page", async () => {
    for (let i = 0; i < 5; i++) emulator.model.insertEvent("primary", { summary: `e${i}`, day: i });
    const r = recorder();
    const cal = google.calendar("primary");
    const full = await cal.exportChanges(r.importer);
    // Three pages, then one delta from the last page's nextSyncToken (the follow-up: a page token
    // lists the snapshot of its round's start).
    expect(full.pages).toBe(4);
    expect(r.items.size).toBe(5);
    for (const id of emulator.model.liveEventIds("primary"))
      emulator.model.updateEvent("primary", id, { summary: "x" });
    emulator.requests.length = 0;
    const delta = await cal.exportChanges(r.importer, full.state);
    expect(delta.pages).toBe(4);
    const qs = queries(emulator, EVENTS);
    const tokens = qs.map((q) => q.get("syncToken"));
    expect(new Set(tokens.slice(0, 3)).size).toBe(1);
    expect(tokens[3]).not.toBe(tokens[0]);
    expect(qs[0]?.get("pageToken")).toBeNull();
    expect(qs[1]?.get("pageToken")).not.toBeNull();
    expect(qs[3]?.get("pageToken")).toBeNull();
    expect(
      [...r.items.values()].every((o) => (o.data as { summary: string }).summary === "x"),
    ).toBe(true);
  });

  it("maps cancelled events to deletes keyed on id (never iCalUID)", async () => {
    const id = emulator.model.insertEvent("primary", { summary: "a", day: 1 });
    const r = recorder();
    const state = await google.calendar("primary").sync(r.importer);
    emulator.model.deleteEvent("primary", id);
    await google.calendar("primary").sync(r.importer, state);
    expect(r.log.at(-1)).toBe(`delete ${id}`);
    expect(r.items.size).toBe(0);
  });

  it("keeps a cancelled exception of a series as an exception record (singleEvents=false)", async () => {
    const series = emulator.model.insertEvent("primary", { summary: "s", day: 1, count: 3 });
    const r = recorder();
    const state = await google.calendar("primary").sync(r.importer);
    emulator.model.exception("primary", series, 1);
    await google.calendar("primary").sync(r.importer, state);
    const ex = r.items.get(`${series}_1`);
    expect(ex?.data).toMatchObject({ status: "cancelled", recurringEventId: series });
    expect(r.items.has(series)).toBe(true);
  });

  it("expands series with singleEvents=true and deletes a cancelled instance; the choice is kept in the state", async () => {
    const expanded = account(emulator, { singleEvents: true });
    const series = emulator.model.insertEvent("primary", { summary: "s", day: 1, count: 3 });
    const r = recorder();
    const state = await expanded.calendar("primary").sync(r.importer);
    expect([...r.items.keys()].sort()).toEqual([`${series}_0`, `${series}_1`, `${series}_2`]);
    expect(queries(emulator, EVENTS).every((q) => q.get("singleEvents") === "true")).toBe(true);
    emulator.model.exception("primary", series, 2);
    await expanded.calendar("primary").sync(r.importer, state);
    expect(r.items.has(`${series}_2`)).toBe(false);
    // The same state on an account with singleEvents=false is refused, not silently mixed.
    await expect(google.calendar("primary").sync({}, state)).rejects.toBeInstanceOf(StateError);
    await expanded.close();
  });

  it("bounds the full sync with timeMin/timeMax, never sends them with a syncToken, and deletes events that leave the window", async () => {
    const inside = emulator.model.insertEvent("primary", { summary: "in", day: 5 });
    emulator.model.insertEvent("primary", { summary: "out", day: 50 });
    const window = { timeMin: "2026-01-03T00:00:00Z", timeMax: "2026-01-20T00:00:00Z" };
    const r = recorder();
    const cal = google.calendar("primary");
    const state = await cal.sync(r.importer, undefined, { window });
    expect([...r.items.keys()]).toEqual([inside]);
    expect(queries(emulator, EVENTS)[0]?.get("timeMin")).toBe(window.timeMin);
    emulator.model.updateEvent("primary", inside, { day: 40 });
    emulator.requests.length = 0;
    const next = await cal.sync(r.importer, state);
    for (const q of queries(emulator, EVENTS)) {
      for (const k of [
        "timeMin",
        "timeMax",
        "orderBy",
        "q",
        "iCalUID",
        "updatedMin",
        "showDeleted",
      ])
        expect(q.has(k)).toBe(false);
    }
    expect(r.items.size).toBe(0);
    // The window is remembered: a different one with the state is a StateError.
    await expect(
      cal.sync({}, next, { window: { timeMin: "2025-01-01T00:00:00Z" } }),
    ).rejects.toBeInstanceOf(StateError);
  });

  it("turns 410 fullSyncRequired into StateInvalidError", async () => {
    const state = await google.calendar("primary").sync({});
    emulator.model.expire();
    await expect(google.calendar("primary").sync({}, state)).rejects.toBeInstanceOf(
      StateInvalidError,
    );
  });

  it("turns a 410 in the middle of paging into StateInvalidError, and the state does not advance", async () => {
    const cal = google.calendar("primary");
    const state = await cal.sync({});
    for (let i = 0; i < 6; i++) emulator.model.insertEvent("primary", { summary: `e${i}`, day: i });
    const checkpoints: string[] = [];
    let n = 0;
    const importer = {
      update: () => {
        if (++n === 1) emulator.model.expire("calendar");
      },
    };
    const google2 = account(emulator, { prefetch: false });
    await expect(
      google2
        .calendar("primary")
        .sync(importer, state, { onCheckpoint: (s) => void checkpoints.push(s) }),
    ).rejects.toBeInstanceOf(StateInvalidError);
    expect(n).toBe(2);
    await google2.close();
    // The original state is rejected too: the orchestrator resets and full-syncs.
    await expect(cal.sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
  });

  it("does not confuse the 410 `deleted` reason on a write with fullSyncRequired", async () => {
    const id = emulator.model.insertEvent("primary", { summary: "a", day: 1 });
    const http = createHttpClient({
      baseUrl: `${emulator.url}calendar/v3/`,
      classify: classifyGoogleError,
    });
    await http.request({ method: "DELETE", path: `calendars/primary/events/${id}` });
    const err = await http
      .request({ method: "DELETE", path: `calendars/primary/events/${id}` })
      .catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).not.toBeInstanceOf(StateInvalidError);
    await http.close();
  });

  it("backs off on 403 usageLimits and 429, then succeeds", async () => {
    emulator.model.insertEvent("primary", { summary: "a", day: 1 });
    emulator.inject({
      path: EVENTS,
      status: 403,
      body: googleError(403, "userRateLimitExceeded", "slow down", "usageLimits"),
    });
    emulator.inject({ path: EVENTS, status: 429, headers: { "retry-after": "0" } });
    emulator.inject({ path: EVENTS, status: 503 });
    const r = recorder();
    await google.calendar("primary").sync(r.importer);
    expect(r.items.size).toBe(1);
    expect(queries(emulator, EVENTS)).toHaveLength(4);
  });

  it("reports TransientError when usage limits persist past the retries", async () => {
    emulator.inject({
      path: EVENTS,
      status: 403,
      body: googleError(403, "quotaExceeded", "Calendar usage limits exceeded.", "usageLimits"),
      times: 10,
    });
    await expect(google.calendar("primary").sync({})).rejects.toBeInstanceOf(TransientError);
  });

  it("treats a plain 403 as AuthError and 401 as AuthError", async () => {
    emulator.inject({
      path: EVENTS,
      status: 403,
      body: googleError(403, "forbidden", "Forbidden"),
    });
    await expect(google.calendar("primary").sync({})).rejects.toBeInstanceOf(AuthError);
    emulator.options.tokens = ["good"];
    await expect(google.calendar("primary").sync({})).rejects.toBeInstanceOf(AuthError);
  });

  it("refreshes the token once on 401", async () => {
    emulator.options.tokens = ["fresh"];
    const calls: boolean[] = [];
    const g = account(emulator, {
      accessToken: undefined,
      getAccessToken: async ({ forceRefresh }) => {
        calls.push(forceRefresh);
        return forceRefresh ? "fresh" : "stale";
      },
    });
    await g.calendar("primary").sync({});
    // The first page and the account look-up go out together; their 401s share one refresh.
    expect(calls[0]).toBe(false);
    expect(calls.filter((forced) => forced)).toEqual([true]);
    await g.close();
  });

  it("retries connection resets", async () => {
    emulator.model.insertEvent("primary", { summary: "a", day: 1 });
    emulator.inject({ path: EVENTS, reset: true, times: 2 });
    const r = recorder();
    await google.calendar("primary").sync(r.importer);
    expect(r.items.size).toBe(1);
  });

  it("retries a truncated body (a cut connection) and completes the sync", async () => {
    emulator.model.insertEvent("primary", { summary: "a", day: 1 });
    emulator.inject({ path: EVENTS, malformed: true });
    const r = recorder();
    await google.calendar("primary").sync(r.importer);
    expect(r.items.size).toBe(1);
  });

  it("rejects a body that stays malformed with ProtocolError and keeps the previous state usable", async () => {
    const cal = google.calendar("primary");
    const state = await cal.sync({});
    emulator.model.insertEvent("primary", { summary: "a", day: 1 });
    emulator.inject({ path: EVENTS, malformed: true, times: 4 });
    await expect(cal.sync({}, state)).rejects.toBeInstanceOf(ProtocolError);
    const r = recorder();
    await cal.sync(r.importer, state);
    expect(r.items.size).toBe(1);
  });

  it("names the endpoint and the field of a schema violation", async () => {
    emulator.inject({
      path: EVENTS,
      status: 200,
      body: { items: [{ id: "ok" }, { summary: "no id" }] },
    });
    const err = await google
      .calendar("primary")
      .sync({})
      .catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toContain("calendar.events.list");
    expect(err.message).toContain("items[1].id");
  });

  it("rejects a last page without nextSyncToken as a protocol error", async () => {
    emulator.inject({ path: EVENTS, status: 200, body: { items: [] } });
    await expect(google.calendar("primary").sync({})).rejects.toBeInstanceOf(ProtocolError);
  });

  it("rejects corrupt, foreign and ill-typed states with StateError", async () => {
    await checkStateErrors(google.calendar("primary"));
  });
});

describe("calendar list", () => {
  it("exports calendars added, changed, hidden and removed", async () => {
    const google = account(emulator);
    emulator.model.addCalendar("c1", "one");
    const r = recorder();
    const list = google.calendarList();
    const state = await list.sync(r.importer);
    expect([...r.items.keys()].sort()).toEqual(["c1", "primary"]);
    emulator.model.updateCalendar("c1", { summary: "uno", hidden: true });
    emulator.model.addCalendar("c2");
    emulator.model.removeCalendar("primary");
    await list.sync(r.importer, state);
    expect([...r.items.keys()].sort()).toEqual(["c1", "c2"]);
    expect(r.items.get("c1")?.data).toMatchObject({ summary: "uno", hidden: true });
    expect(r.items.get("c1")?.type).toBe("folder");
    emulator.model.expire();
    await expect(list.sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
    await checkStateErrors(list);
    await google.close();
  });
});
