/**
 * Two-way sync with Google Calendar, against the emulator (test/google): client-chosen event
 * ids, If-Match → 412, and random histories of local and remote edits with crashing pushes.
 */

import { fc } from "@fast-check/vitest";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { base32hex } from "../../adapters/google/google-write.js";
import { ConflictError, NotFoundError, PushBlockedError } from "../../src/core/errors.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { push } from "../../src/two-way/push.js";
import { settlePushed } from "../../src/two-way/settle.js";
import type { ConflictPolicy, WriteTarget } from "../../src/two-way/types.js";
import { GoogleEmulator } from "../google/emulator.js";
import { dayTime } from "../google/emulator-model.js";
import { account } from "../google/helpers.js";

const RUNS = process.env.CI ? 50 : Number(process.env.GOOGLE_TWO_WAY_RUNS ?? 50);
let emulator: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator?.close();
});

const ctx = { signal: new AbortController().signal };

describe("Google Calendar write surface", () => {
  it("base32hex ids are what Google accepts", () => {
    expect(base32hex("ds1")).toMatch(/^[a-v0-9]{5,}$/);
    expect(base32hex("f")).toBe("co");
  });

  it("insert with a client id, replay → ConflictError + applied, If-Match → 412, delete", async () => {
    emulator.reset();
    emulator.model.addCalendar("primary");
    const google = account(emulator);
    const target = google.calendarWriteTarget("primary");
    const id = target.keyFor("row-1");
    const event = { summary: "a", start: dayTime(1), end: dayTime(1, 1) };
    const entry = {
      kind: "create" as const,
      seq: 1,
      at: 0,
      localId: "row-1",
      sourcekey: id,
      data: event,
    };
    const made = await target.create(entry, ctx);
    expect(made).toMatchObject({ sourcekey: id, changeKey: expect.stringMatching(/^"/) });
    await expect(target.create(entry, ctx)).rejects.toBeInstanceOf(ConflictError);
    const remote = await target.fetch(id, ctx);
    expect(remote && target.applied(entry, remote)).toBe(true);
    emulator.model.updateEvent("primary", id, { summary: "theirs" });
    const update = {
      ...entry,
      kind: "update" as const,
      changeKey: made.changeKey,
      data: { ...event, summary: "b" },
    };
    await expect(target.update(update, ctx)).rejects.toBeInstanceOf(ConflictError);
    const now = await target.fetch(id, ctx);
    const ok = await target.update({ ...update, changeKey: now?.changeKey }, ctx);
    expect(ok.object?.data).toMatchObject({ summary: "b" });
    await expect(
      target.delete(
        {
          kind: "delete",
          seq: 3,
          at: 0,
          localId: "row-1",
          sourcekey: id,
          changeKey: now?.changeKey,
        },
        ctx,
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    await target.delete(
      { kind: "delete", seq: 3, at: 0, localId: "row-1", sourcekey: id, changeKey: ok.changeKey },
      ctx,
    );
    expect(await target.fetch(id, ctx)).toBeUndefined();
    await expect(
      target.delete({ kind: "delete", seq: 4, at: 0, localId: "row-1", sourcekey: id }, ctx),
    ).rejects.toBeInstanceOf(NotFoundError);
    await google.close();
  });
});

type Op =
  | { t: "lcreate"; v: string }
  | { t: "lupdate"; pick: number; v: string }
  | { t: "ldelete"; pick: number }
  | { t: "rcreate"; v: string }
  | { t: "rupdate"; pick: number; v: string }
  | { t: "rdelete"; pick: number }
  | { t: "push"; crashAt: number; after: boolean }
  | { t: "pull" };
const v = fc.constantFrom("a", "b");
const pick = fc.nat(10);
const ops = fc.array(
  fc.oneof(
    fc.record({ t: fc.constant("lcreate" as const), v }),
    { weight: 2, arbitrary: fc.record({ t: fc.constant("lupdate" as const), pick, v }) },
    fc.record({ t: fc.constant("ldelete" as const), pick }),
    fc.record({ t: fc.constant("rcreate" as const), v }),
    fc.record({ t: fc.constant("rupdate" as const), pick, v }),
    fc.record({ t: fc.constant("rdelete" as const), pick }),
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("push" as const),
        crashAt: fc.nat(3),
        after: fc.boolean(),
      }),
    },
    fc.record({ t: fc.constant("pull" as const) }),
  ),
  { minLength: 1, maxLength: 16 },
);

class Crash extends Error {}
function crashing(target: WriteTarget, at: number, after: boolean): WriteTarget {
  let n = 0;
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const crash = ++n === at;
      if (crash && !after) throw new Crash("before write");
      const r = await fn(...a);
      if (crash) throw new Crash("after write");
      return r;
    };
  return {
    ...target,
    create: wrap(target.create),
    update: wrap(target.update),
    delete: wrap(target.delete),
  };
}

async function history(policy: "client-wins" | "server-wins" | "ask", list: Op[]): Promise<void> {
  emulator.reset();
  const model = emulator.model;
  model.addCalendar("primary");
  model.insertEvent("primary", { summary: "seed", day: 1 });
  const google = account(emulator, { retry: { retries: 0 } });
  const target = google.calendarWriteTarget("primary");
  const pair = "google:me/primary";
  const mirror = createSqliteMirror(new Database(":memory:"), {
    source: pair,
    keyFor: target.keyFor,
  });
  const calendar = google.calendar("primary");
  let state: string | undefined;
  const pull = async () => {
    state = await calendar.sync(mirror.importer, state);
    await settlePushed(target, mirror.outbox, { pair, ...mirror.pushCallbacks });
  };
  const options = {
    pair,
    policy: policy as ConflictPolicy,
    retry: false as const,
    ...mirror.pushCallbacks,
  };
  const live = () =>
    [...(model.calendars.get("primary")?.keys() ?? [])]
      .map((k) => model.calendars.get("primary")?.get(k))
      .filter((e) => e && e.status !== "cancelled")
      .map((e) => e as NonNullable<typeof e>)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  try {
    await pull();
    for (const o of list) {
      const rows = mirror.rows();
      const row = "pick" in o ? rows[o.pick % Math.max(1, rows.length)] : undefined;
      const events = live();
      const ev = "pick" in o ? events[o.pick % Math.max(1, events.length)] : undefined;
      switch (o.t) {
        case "lcreate":
          mirror.edits.create({
            data: { summary: o.v, start: dayTime(2), end: dayTime(2, 1) },
            parentKey: "primary",
          });
          break;
        case "lupdate":
          if (row) mirror.edits.update(row.id, { ...(row.data as object), summary: `${o.v}l` });
          break;
        case "ldelete":
          if (row) mirror.edits.remove(row.id);
          break;
        case "rcreate":
          model.insertEvent("primary", { summary: o.v, day: 3 });
          break;
        case "rupdate":
          if (ev) model.updateEvent("primary", ev.id, { summary: `${o.v}r` });
          break;
        case "rdelete":
          if (ev) model.deleteEvent("primary", ev.id);
          break;
        case "push":
          try {
            await push(crashing(target, o.crashAt, o.after), mirror.outbox, options);
          } catch (error) {
            if (!(error instanceof PushBlockedError && error.cause instanceof Crash)) throw error;
          }
          break;
        case "pull":
          await pull();
          break;
      }
    }
    for (let round = 0; ; round++) {
      expect(round).toBeLessThan(20);
      const r = await push(target, mirror.outbox, options);
      if (r.status === "paused") {
        await mirror.outbox.resolve(r.conflict?.id as string, round % 2 ? "remote" : "local");
        continue;
      }
      await pull();
      if ((await mirror.outbox.pending(pair)).length === 0) break;
    }
    await pull();
    const rows = mirror
      .rows()
      .map((r) => [r.sourcekey, (r.data as { summary?: string }).summary])
      .sort();
    expect(rows).toEqual(
      live()
        .map((e) => [e.id, e.summary])
        .sort(),
    );
  } finally {
    mirror.close();
    await google.close();
  }
}

describe("two-way against the Google emulator", () => {
  it("an edit of an event deleted remotely is re-created, and the pull never drops its row", async () => {
    // The re-create's old key stays protected until the write-back (pull before the push ends).
    await history("client-wins", [
      { t: "lupdate", pick: 0, v: "a" },
      { t: "rdelete", pick: 0 },
      { t: "push", crashAt: 2, after: false },
      { t: "pull" },
      { t: "rcreate", v: "a" },
    ]);
    // The echo of the first create is forgotten once the object moved to its new key.
    await history("client-wins", [
      { t: "lcreate", v: "a" },
      { t: "push", crashAt: 0, after: false },
      { t: "lupdate", pick: 0, v: "a" },
      { t: "rdelete", pick: 0 },
      { t: "pull" },
      { t: "lupdate", pick: 0, v: "a" },
    ]);
  });

  it(`histories of local and remote edits with crashes converge (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("client-wins" as const, "server-wins" as const, "ask" as const),
        ops,
        history,
      ),
      { numRuns: RUNS },
    );
  });
});
