import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { StateError } from "../../src/core/errors.js";
import { GraphEmulator } from "./emulator.js";
import { account, recorder } from "./helpers.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => emulator.close());
beforeEach(() => {
  emulator.reset();
  emulator.options = { maxPageSize: 2 };
});

const views = () => emulator.requests.filter((r) => r.path.endsWith("/calendarView/delta"));
const DAY = 86_400_000;

describe("calendar views", () => {
  it("sends the window on the full sync's first request only and expands series into occurrences", async () => {
    const m = emulator.model;
    const series = m.addEvent("primary", "standup", 1, 3);
    m.addEvent("primary", "lunch", 2);
    const graph = account(emulator);
    const r = recorder();
    const state = await graph.calendar("primary").sync(r.importer);
    expect([...r.items.keys()].sort()).toEqual(
      [`${series}_occ0`, `${series}_occ1`, `${series}_occ2`, "ev-2"].sort(),
    );
    const [first, ...rest] = views();
    expect(first?.query.get("startDateTime")).toBeTruthy();
    expect(first?.query.get("endDateTime")).toBeTruthy();
    expect(first?.prefer).toContain('outlook.timezone="UTC"');
    m.updateEvent(series, { exception: [1, "moved standup"] });
    await graph.calendar("primary").sync(r.importer, state);
    for (const req of [...rest, ...views().slice(rest.length + 1)])
      expect(req.query.has("startDateTime")).toBe(false);
    expect((r.items.get(`${series}_occ1`)?.data as { type?: string } | undefined)?.type).toBe(
      "exception",
    );
    await graph.close();
  });

  it("an event moved out of the window, or changed outside it, is a delete; cancelled occurrences too", async () => {
    const m = emulator.model;
    const single = m.addEvent("primary", "a", 1);
    const series = m.addEvent("primary", "b", 1, 2);
    const far = m.addEvent("primary", "c", 900);
    const graph = account(emulator);
    const r = recorder();
    const state = await graph.calendar("primary").sync(r.importer);
    expect(r.items.has(far)).toBe(false);
    m.updateEvent(single, { day: 900 });
    m.updateEvent(far, { subject: "still far" });
    m.updateEvent(series, { cancel: 0 });
    r.log.length = 0;
    await graph.calendar("primary").sync(r.importer, state);
    expect(r.items.has(single)).toBe(false);
    expect(r.items.has(`${series}_occ0`)).toBe(false);
    expect(r.items.has(`${series}_occ1`)).toBe(true);
    expect(r.log).toContain(`delete ${far}`);
    await graph.close();
  });

  it("records the caller's window; another window with the state is a StateError", async () => {
    const m = emulator.model;
    m.addEvent("primary", "in", 1);
    m.addEvent("primary", "out", 40);
    const graph = account(emulator);
    const timeMin = new Date(m.day0 - DAY).toISOString();
    const timeMax = new Date(m.day0 + 20 * DAY).toISOString();
    const r = recorder();
    const state = await graph
      .calendar("primary")
      .sync(r.importer, undefined, { window: { timeMin, timeMax } });
    expect([...r.items.values()].map((o) => (o.data as { subject?: string }).subject)).toEqual([
      "in",
    ]);
    expect(views()[0]?.query.get("startDateTime")).toBe(timeMin);
    await expect(
      graph.calendar("primary").sync({}, state, { window: { timeMin, timeMax: timeMin } }),
    ).rejects.toBeInstanceOf(StateError);
    await graph.close();
  });

  it("another calendar goes through /calendars/{id}/calendarView/delta", async () => {
    emulator.model.addCalendar("Work", "work");
    emulator.model.addEvent("work", "w", 2);
    const graph = account(emulator);
    const r = recorder();
    await graph.calendar("work").sync(r.importer);
    expect(r.items.size).toBe(1);
    expect(views()[0]?.path).toBe("/v1.0/me/calendars/work/calendarView/delta");
    await graph.close();
  });
});
