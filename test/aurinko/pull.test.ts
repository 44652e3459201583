import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AurinkoAccount, aurinkoTokens } from "../../adapters/aurinko/index.js";
import {
  ProtocolError,
  StateError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import { decodeState } from "../../src/core/state.js";
import { syncEmail } from "../../src/orchestrator/account.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { AurinkoEmulator } from "./emulator.js";
import { account, calls, message, recorder } from "./helpers.js";

let emulator: AurinkoEmulator;
let alice: AurinkoAccount;
beforeAll(async () => {
  emulator = await AurinkoEmulator.start({ pageSize: 3 });
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  alice = account(emulator);
});
afterEach(async () => {
  await alice.close();
});

const model = () => emulator.account("alice");

describe("the two streams", () => {
  it("pages with deltaToken first, then pageToken only; both tokens advance; read state from sysLabels", async () => {
    for (let i = 0; i < 7; i++) model().insert("email", message(`m${i}`, i % 2 === 0), `m${i}`);
    const rec = recorder();
    const state = await alice.mail().sync(rec.importer);
    expect([...rec.items.keys()].sort()).toEqual(["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    expect(rec.reads.get("m0")).toBe(false);
    expect(rec.reads.get("m1")).toBe(true);
    const streamCalls = calls(emulator, /sync/);
    expect(streamCalls[0]).toMatch(/^POST email\/sync$/);
    // 7 records in pages of 3: deltaToken, pageToken, pageToken; then the deleted stream.
    expect(streamCalls.slice(1).map((c) => c.replace(/=.*/, ""))).toEqual([
      "GET email/sync/updated?deltaToken",
      "GET email/sync/updated?pageToken",
      "GET email/sync/updated?pageToken",
      "GET email/sync/deleted?deltaToken",
    ]);
    const first = aurinkoTokens(state);
    expect(first.syncUpdatedToken).toEqual(expect.any(String));
    expect(first.syncDeletedToken).toEqual(expect.any(String));

    emulator.requests.length = 0;
    model().update("email", "m1", { sysLabels: ["unread", "flagged"] });
    model().remove("email", "m2");
    const rec2 = recorder();
    const next = await alice.mail().sync(rec2.importer, state);
    expect(rec2.log).toEqual(["update m1", "read m1 false", "delete m2"]);
    // An incremental round starts no new sync: it reads both streams from the stored tokens.
    expect(calls(emulator, /sync/)).toEqual([
      `GET email/sync/updated?deltaToken=${first.syncUpdatedToken}`,
      `GET email/sync/deleted?deltaToken=${first.syncDeletedToken}`,
    ]);
    const second = aurinkoTokens(next);
    expect(second.syncUpdatedToken).not.toBe(first.syncUpdatedToken);
    expect(second.syncDeletedToken).not.toBe(first.syncDeletedToken);
  });

  it("a failure on the deleted stream replays only the updated stream's last page and loses no delete", async () => {
    for (let i = 0; i < 5; i++) model().insert("email", message(`m${i}`), `m${i}`);
    model().insert("email", message("x"), "x");
    const state = await alice.mail().sync(recorder().importer);
    const before = aurinkoTokens(state);
    for (let i = 0; i < 5; i++) model().update("email", `m${i}`, { subject: `y${i}` });
    model().remove("email", "x");
    // The deleted stream fails for good (a 400 is not retried).
    emulator.inject({ path: /sync\/deleted$/, status: 400, body: { code: "badRequest" } });
    const checkpoints: string[] = [];
    const rec = recorder();
    await expect(
      alice.mail().sync(rec.importer, state, { onCheckpoint: (s) => void checkpoints.push(s) }),
    ).rejects.toBeInstanceOf(ProtocolError);
    // Page 1 (m0..m2) was imported; page 2 (the updated stream's last) was not.
    expect(rec.log.filter((l) => l.startsWith("update"))).toEqual([
      "update m0",
      "update m1",
      "update m2",
    ]);
    expect(checkpoints).toHaveLength(1);
    const saved = checkpoints[0] as string;
    // Neither token moved: the updated stream's token only advances with the deleted stream.
    expect(aurinkoTokens(saved)).toEqual(before);
    const page = decodeState(saved, "aurinko", "mail").page as { t: string };

    emulator.requests.length = 0;
    const fresh = account(emulator);
    const rec2 = recorder();
    let done: string;
    try {
      done = await fresh.mail().sync(rec2.importer, saved);
    } finally {
      await fresh.close();
    }
    expect(rec2.log.filter((l) => !l.startsWith("read"))).toEqual([
      "update m3",
      "update m4",
      "delete x",
    ]);
    expect(calls(emulator, /sync/)).toEqual([
      `GET email/sync/updated?pageToken=${page.t}`,
      `GET email/sync/deleted?deltaToken=${before.syncDeletedToken}`,
    ]);
    expect(aurinkoTokens(done).syncUpdatedToken).not.toBe(before.syncUpdatedToken);
    expect(aurinkoTokens(done).syncDeletedToken).not.toBe(before.syncDeletedToken);
  });

  it("a delete made while a round was interrupted is read after the updated stream", async () => {
    for (let i = 0; i < 4; i++) model().insert("contacts", { name: `c${i}` }, `c${i}`);
    const checkpoints: string[] = [];
    const controller = new AbortController();
    await alice
      .contacts()
      .sync(recorder().importer, null, {
        signal: controller.signal,
        onCheckpoint: (s) => {
          checkpoints.push(s);
          controller.abort(new Error("crash"));
        },
      })
      .catch(() => undefined);
    // Page 1 (c0..c2) imported; c0 is deleted and c9 created while the process is down.
    model().remove("contacts", "c0");
    model().insert("contacts", { name: "c9" }, "c9");
    const rec = recorder();
    for (const k of ["c0", "c1", "c2"]) rec.items.set(k, { sourcekey: k, type: "item", data: {} });
    const fresh = account(emulator);
    try {
      await fresh.contacts().sync(rec.importer, checkpoints[0] as string);
    } finally {
      await fresh.close();
    }
    expect([...rec.items.keys()].sort()).toEqual(["c1", "c2", "c3", "c9"]);
  });

  it("an importer failure on a delete resumes without replaying what was confirmed", async () => {
    model().insert("contacts", { name: "a" }, "a");
    model().insert("contacts", { name: "b" }, "b");
    const state = await alice.contacts().sync(recorder().importer);
    model().update("contacts", "a", { name: "a2" });
    model().remove("contacts", "b");
    const log: string[] = [];
    let failed = false;
    const importer = {
      update: (o: { sourcekey: string }) => void log.push(`update ${o.sourcekey}`),
      delete: (o: { sourcekey: string }) => {
        if (!failed) {
          failed = true;
          throw new Error("db down");
        }
        log.push(`delete ${o.sourcekey}`);
      },
    };
    const stopped = await alice.contacts().exportChanges(importer, state, { maxChanges: 1 });
    expect(log).toEqual(["update a"]);
    await expect(alice.contacts().sync(importer, stopped.state)).rejects.toThrow("db down");
    const fresh = account(emulator);
    try {
      await fresh.contacts().sync(importer, stopped.state);
    } finally {
      await fresh.close();
    }
    expect(log).toEqual(["update a", "delete b"]);
  });

  it("a resumed full sync reads the deleted stream from its first tokens (a record delivered unconfirmed, then deleted, is deleted)", async () => {
    model().insert("email", message("m0"), "m0");
    model().insert("email", message("m1"), "m1");
    const rec = recorder();
    const stopped = await alice.mail().exportChanges(rec.importer, null, { maxChanges: 2 });
    expect(rec.log).toEqual(["update m0", "read m0 false"]);
    // m1 reaches the copy, then the importer fails before the state moves past it.
    const failing = {
      ...rec.importer,
      read: () => {
        throw new Error("db down");
      },
    };
    await expect(alice.mail().sync(failing, stopped.state)).rejects.toThrow("db down");
    expect(rec.items.has("m1")).toBe(true);
    model().remove("email", "m1");
    const fresh = account(emulator);
    try {
      await fresh.mail().sync(rec.importer, stopped.state);
    } finally {
      await fresh.close();
    }
    expect([...rec.items.keys()]).toEqual(["m0"]);
  });

  it("resuming inside a page asks GET by id about a delivered record the new answer lacks", async () => {
    // Two pages (of 3): the page a stopped in is not the last, so no deleted stream follows it.
    for (const k of ["a", "b", "c", "d", "e"]) model().insert("contacts", { name: k }, k);
    const stopped = await alice.contacts().exportChanges(recorder().importer, null, {
      maxChanges: 1,
    });
    expect(stopped.complete).toBe(false);
    model().remove("contacts", "a");
    emulator.requests.length = 0;
    const rec = recorder();
    // A new process: no page kept by read-ahead.
    const fresh = account(emulator);
    try {
      await fresh.contacts().sync(rec.importer, stopped.state);
    } finally {
      await fresh.close();
    }
    expect(calls(emulator, /contacts\/a$/)).toEqual(["GET contacts/a"]);
    expect(rec.log).toContain("delete a");
    expect([...rec.items.keys()].sort()).toEqual(["b", "c", "d", "e"]);
  });

  it("contacts read the deleted stream; tasks use /tasklists/{id}/…", async () => {
    model().insert("contacts", { name: "a" }, "a");
    model().addTasklist("list 1");
    model().insert("tasklists/list 1", { title: "t", status: "notStarted" }, "t1");
    const c = await alice.contacts().sync(recorder().importer);
    const t = await alice.tasks("list 1").sync(recorder().importer);
    model().remove("contacts", "a");
    model().remove("tasklists/list 1", "t1");
    const rc = recorder();
    const rt = recorder();
    await alice.contacts().sync(rc.importer, c);
    await alice.tasks("list 1").sync(rt.importer, t);
    expect(rc.log).toEqual(["delete a"]);
    expect(rt.log).toEqual(["delete t1"]);
    expect(calls(emulator, /tasklists/).every((c) => c.includes("tasklists/list%201/"))).toBe(true);
    expect(calls(emulator, /tasks\/lists/)).toEqual([]);
  });

  it("a calendar sends timeMin/timeMax and drops events that leave the window", async () => {
    model().addCalendar("primary");
    const at = (d: string) => ({
      start: { dateTime: d },
      end: { dateTime: d.replace("T10", "T11") },
    });
    model().insert("calendars/primary", { subject: "in", ...at("2024-06-01T10:00:00Z") }, "e1");
    model().insert("calendars/primary", { subject: "out", ...at("2023-06-01T10:00:00Z") }, "e2");
    const window = { timeMin: "2024-01-01T00:00:00Z", timeMax: "2025-01-01T00:00:00Z" };
    const rec = recorder();
    const state = await alice.calendar("primary").sync(rec.importer, null, { window });
    expect([...rec.items.keys()]).toEqual(["e1"]);
    expect(calls(emulator, /calendars\/primary\/sync$/)[0]).toBe(
      "POST calendars/primary/sync?timeMin=2024-01-01T00%3A00%3A00Z&timeMax=2025-01-01T00%3A00%3A00Z",
    );
    model().update("calendars/primary", "e1", at("2026-06-01T10:00:00Z"));
    await alice.calendar("primary").sync(rec.importer, state);
    expect([...rec.items.keys()]).toEqual([]);
  });

  it("the calendar list and the task lists are hierarchies", async () => {
    model().addCalendar("primary");
    model().addCalendar("work");
    const rec = recorder();
    const state = await alice.calendarList().sync(rec.importer);
    expect([...rec.items.keys()].sort()).toEqual(["primary", "work"]);
    model().renameCalendar("work", "Work");
    model().removeCalendar("primary");
    model().addTasklist("l1");
    const rec2 = recorder();
    await alice.calendarList().sync(rec2.importer, state);
    expect(rec2.log.sort()).toEqual(["delete primary", "update work"]);
    const rec3 = recorder();
    await alice.taskLists().sync(rec3.importer);
    expect(rec3.log).toEqual(["update l1"]);
  });

  it("a folder changed under a failed importer and changed back is delivered again", async () => {
    model().addCalendar("work", "Work");
    model().addCalendar("zz", "Z");
    const rec = recorder();
    const state = await alice.calendarList().sync(rec.importer);
    model().renameCalendar("work", "Renamed");
    let calls = 0;
    const failing = {
      ...rec.importer,
      update: (
        o: Parameters<NonNullable<typeof rec.importer.update>>[0],
        f: { created: boolean },
      ) => {
        rec.importer.update?.(o, f);
        if (++calls === 1) throw new Error("db down");
      },
    };
    await expect(alice.calendarList().sync(failing, state)).rejects.toThrow("db down");
    const name = () => (rec.items.get("work")?.data as { name?: string } | undefined)?.name;
    expect(name()).toBe("Renamed");
    model().renameCalendar("work", "Work");
    await alice.calendarList().sync(rec.importer, state);
    expect(name()).toBe("Work");
  });

  it("one sync aborted while the account is looked up does not fail another scope's sync", async () => {
    model().insert("contacts", { name: "a" }, "a");
    emulator.slow = { path: /\/account$/, ms: 100 };
    const controller = new AbortController();
    const aborted = alice.mail().sync(recorder().importer, null, { signal: controller.signal });
    const other = alice.contacts().sync(recorder().importer);
    controller.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    await expect(other).resolves.toEqual(expect.any(String));
    expect(calls(emulator, /account$/)).toHaveLength(1);
  });

  it("a state of another account is a StateError before anything is imported", async () => {
    const bob = account(emulator, "bob");
    try {
      const bobState = await bob.contacts().sync(recorder().importer);
      const rec = recorder();
      await expect(alice.contacts().sync(rec.importer, bobState)).rejects.toBeInstanceOf(
        StateError,
      );
      expect(rec.log).toEqual([]);
    } finally {
      await bob.close();
    }
  });
});

describe("POST …/sync until ready", () => {
  it("repeats the start with a doubling pause while ready is false", async () => {
    const pauses: number[] = [];
    const a = account(emulator, "alice", {
      ready: {
        minDelayMs: 1000,
        maxDelayMs: 3000,
        timeoutMs: 60_000,
        sleep: async (ms) => void pauses.push(ms),
      },
    });
    try {
      emulator.notReady = 4;
      model().insert("contacts", { name: "a" }, "a");
      const rec = recorder();
      await a.contacts().sync(rec.importer);
      expect(pauses).toEqual([1000, 2000, 3000, 3000]);
      expect(calls(emulator, /contacts\/sync$/)).toHaveLength(5);
      expect(rec.log).toEqual(["update a"]);
    } finally {
      await a.close();
    }
  });

  it("gives up after the timeout with a TransientError", async () => {
    const a = account(emulator, "alice", {
      ready: { minDelayMs: 1000, maxDelayMs: 1000, timeoutMs: 2500, sleep: async () => {} },
    });
    try {
      emulator.notReady = 100;
      await expect(a.contacts().sync(recorder().importer)).rejects.toBeInstanceOf(TransientError);
      // 0, 1000, 2000, 2500 ms: four starts.
      expect(calls(emulator, /contacts\/sync$/)).toHaveLength(4);
    } finally {
      await a.close();
    }
  });

  it("is abortable while it waits", async () => {
    const controller = new AbortController();
    const a = account(emulator, "alice", {
      ready: { minDelayMs: 60_000, maxDelayMs: 60_000, timeoutMs: 600_000 },
    });
    try {
      emulator.notReady = 100;
      const sync = a.contacts().sync(recorder().importer, null, { signal: controller.signal });
      await new Promise((r) => setTimeout(r, 20));
      controller.abort(new Error("stop"));
      await expect(sync).rejects.toThrow("stop");
    } finally {
      await a.close();
    }
  });
});

describe("errors", () => {
  async function incremental(): Promise<string> {
    model().insert("contacts", { name: "a" }, "a");
    return alice.contacts().sync(recorder().importer);
  }

  it.each([
    ["updated", 410, "syncToken.expired"],
    ["deleted", 410, "syncToken.expired"],
    ["updated", 400, "token.notValid"],
    ["deleted", 400, "token.notValid"],
  ])("%s stream: %i %s is a StateInvalidError, nothing imported", async (stream, status, code) => {
    const state = await incremental();
    model().insert("contacts", { name: "b" }, "b");
    emulator.inject({ path: new RegExp(`sync/${stream}$`), status, body: { code, message: "x" } });
    const rec = recorder();
    const error = await alice
      .contacts()
      .sync(rec.importer, state)
      .catch((e) => e);
    expect(error).toBeInstanceOf(StateInvalidError);
    if (stream === "updated") expect(rec.log).toEqual([]);
  });

  it("an expired token (every token of the account) is a StateInvalidError; runSync resets and full-syncs", async () => {
    const store = createMemoryStateStore();
    const seen: string[] = [];
    const run = () =>
      runSync(alice.contacts(), {
        store,
        onUpdated: (records) => void seen.push(...records.map((r) => r.sourcekey)),
        onReset: () => void seen.push("reset"),
      });
    await incremental();
    await run();
    model().expire();
    const result = await run();
    expect(result.reset).toBe(true);
    expect(seen).toEqual(["a", "reset", "a"]);
    await expect(alice.contacts().sync(recorder().importer, await incremental())).resolves.toEqual(
      expect.any(String),
    );
  });

  it("a 400 of another code is not a token error", async () => {
    const state = await incremental();
    emulator.inject({ path: /sync\/updated$/, status: 400, body: { code: "badRequest" } });
    await expect(alice.contacts().sync(recorder().importer, state)).rejects.toBeInstanceOf(
      ProtocolError,
    );
  });

  it.each([
    [429, { "retry-after": "0" }],
    [408, {}],
    [500, {}],
    [502, {}],
    [503, { "retry-after": "0" }],
    [504, {}],
  ])("%i is retried", async (status, headers) => {
    const state = await incremental();
    model().insert("contacts", { name: "b" }, "b");
    emulator.inject({ path: /sync\/updated$/, status, headers, times: 2 });
    emulator.inject({ path: /sync\/deleted$/, status, headers });
    const rec = recorder();
    await alice.contacts().sync(rec.importer, state);
    expect(rec.log).toEqual(["update b"]);
  });

  it("connection resets are retried, on the streams and on POST …/sync", async () => {
    model().insert("contacts", { name: "a" }, "a");
    emulator.inject({ path: /contacts\/sync$/, reset: true });
    emulator.inject({ path: /sync\/updated$/, reset: true });
    const rec = recorder();
    await alice.contacts().sync(rec.importer);
    expect(rec.log).toEqual(["update a"]);
  });

  it("Retry-After is honoured: a longer pause than allowed goes back to the caller", async () => {
    const state = await incremental();
    emulator.inject({ path: /sync\/updated$/, status: 429, headers: { "retry-after": "120" } });
    const error = await alice
      .contacts()
      .sync(recorder().importer, state)
      .catch((e) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).retryAfterMs).toBe(120_000);
  });

  it("a page without nextPageToken or nextDeltaToken is a ProtocolError", async () => {
    const state = await incremental();
    emulator.inject({ path: /sync\/updated$/, status: 200, body: { records: [] } });
    await expect(alice.contacts().sync(recorder().importer, state)).rejects.toBeInstanceOf(
      ProtocolError,
    );
  });

  it("a malformed record, updated or deleted, is a ProtocolError naming it; the state holds", async () => {
    const state = await incremental();
    const cases = [
      [/sync\/updated$/, { etag: "e" }, /aurinko\.sync\.updated.*id/],
      [/sync\/updated$/, { id: 7 }, /aurinko\.sync\.updated.*id/],
      [/sync\/deleted$/, { gone: true }, /aurinko\.sync\.deleted.*without an id/],
    ] as const;
    for (const [path, record, message] of cases) {
      emulator.inject({ path, status: 200, body: { records: [record], nextDeltaToken: "d2" } });
      const seen = recorder();
      const error = await alice
        .contacts()
        .sync(seen.importer, state, { onCheckpoint: () => expect.fail("state moved") })
        .catch((e) => e);
      expect(error).toBeInstanceOf(ProtocolError);
      expect(String(error.message)).toMatch(message);
    }
  });

  it("ready: true without tokens is a ProtocolError", async () => {
    emulator.inject({ path: /contacts\/sync$/, status: 200, body: { ready: true } });
    await expect(alice.contacts().sync(recorder().importer)).rejects.toBeInstanceOf(ProtocolError);
  });
});

describe("the orchestrator's result", () => {
  it("reports both final tokens (aurinkoTokens(result)), as the seed's sync_updated_token / sync_deleted_token", async () => {
    model().insert("email", message("a"), "a");
    const result = await syncEmail(alice, {
      store: createMemoryStateStore(),
      window: { daysWithin: 30 },
      onUpdated: () => {},
      onDeleted: () => {},
    });
    expect(result.updated).toBe(1);
    const tokens = aurinkoTokens(result);
    expect(tokens.syncUpdatedToken).toEqual(expect.any(String));
    expect(tokens.syncDeletedToken).toEqual(expect.any(String));
    expect(calls(emulator, /email\/sync$/)).toEqual(["POST email/sync?daysWithin=30"]);
    expect(() => aurinkoTokens("garbage")).toThrow(StateError);
  });
});
