/**
 * Random two-way histories against the Graph emulator, per kind (events, contacts, messages'
 * flags / moves / deletes): local edits through the SQLite mirror, remote edits straight on the
 * emulator's model, pulls, and pushes crashing before or after the server's write. After
 * quiescence the mirror equals the server, no create was made twice, and no pull delivered one of
 * our own writes as a remote change (echo).
 */
import { fc } from "@fast-check/vitest";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENT_KEY_PROPERTY, type GraphAccount } from "../../adapters/graph/index.js";
import { PushBlockedError } from "../../src/core/errors.js";
import type { Importer, SyncObject } from "../../src/core/types.js";
import { createSqliteMirror, type SqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { push } from "../../src/two-way/push.js";
import { settlePushed } from "../../src/two-way/settle.js";
import type { ConflictPolicy, WriteResult, WriteTarget } from "../../src/two-way/types.js";
import { GraphEmulator, type GraphModel } from "../graph/emulator.js";
import { account } from "../graph/helpers.js";

const RUNS = Number(process.env.GRAPH_TWO_WAY_RUNS ?? 50);
let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => {
  await emulator?.close();
});

class Crash extends Error {}
/** The target, failing its `at`-th write before or after the server made it. */
function crashing(target: WriteTarget, at: number, after: boolean): WriteTarget {
  let n = 0;
  const wrap = <A extends unknown[], R>(fn: ((...a: A) => Promise<R>) | undefined) =>
    fn &&
    (async (...a: A): Promise<R> => {
      const crash = ++n === at;
      if (crash && !after) throw new Crash("before write");
      const r = await fn(...a);
      if (crash) throw new Crash("after write");
      return r;
    });
  return {
    ...target,
    create: wrap(target.create) as WriteTarget["create"],
    update: wrap(target.update) as WriteTarget["update"],
    delete: wrap(target.delete) as WriteTarget["delete"],
    move: wrap(target.move),
    read: wrap(target.read),
  };
}

/** What one kind supplies to the history driver. */
interface Kind {
  target(graph: GraphAccount): WriteTarget;
  pull(graph: GraphAccount, importer: Importer, state: string | undefined): Promise<string>;
  seed(model: GraphModel): void;
  /** A local edit of the mirror (`pick` chooses a row, `v` a value). */
  local(mirror: SqliteMirror, op: number, pick: number, v: string): void;
  /** A remote edit straight on the model. */
  remote(model: GraphModel, op: number, pick: number, v: string): void;
  /** What is compared: the mirror's rows and the server's objects, as sorted tuples. */
  rows(mirror: SqliteMirror): unknown[];
  live(model: GraphModel): unknown[];
  /** The client keys of live server objects (a duplicate create shows twice). */
  clientKeys(model: GraphModel): string[];
  /** Messages can't be re-created: an edit of a deleted one yields to the server. */
  editsOfDeletedYield?: true;
}

const pickOf = <T>(list: T[], pick: number): T | undefined => list[pick % Math.max(1, list.length)];
const sorted = (list: unknown[]) => list.map((x) => JSON.stringify(x)).sort();

type Op =
  | { t: "local"; op: number; pick: number; v: string }
  | { t: "remote"; op: number; pick: number; v: string }
  | { t: "push"; crashAt: number; after: boolean }
  | { t: "pull" };
const ops = fc.array(
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant("local" as const),
        op: fc.nat(3),
        pick: fc.nat(10),
        v: fc.constantFrom("a", "b"),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("remote" as const),
        op: fc.nat(3),
        pick: fc.nat(10),
        v: fc.constantFrom("a", "b"),
      }),
    },
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
  { minLength: 1, maxLength: 14 },
);

async function history(kind: Kind, policy: ConflictPolicy, list: Op[]): Promise<void> {
  emulator.reset();
  const model = emulator.model;
  kind.seed(model);
  const graph = account(emulator, { retry: { retries: 0 } });
  const target = kind.target(graph);
  const pair = `graph:${target.id}`;
  const mirror = createSqliteMirror(new Database(":memory:"), {
    source: pair,
    keyFor: target.keyFor,
  });
  // Versions our pushes produced: a pull must never hand one back as a remote change.
  const ours = new Set<string>();
  let echoes = 0;
  // The first delivery of each of those versions must be recognised as our echo (later ones in
  // the same round — a move seen from both folders — find the echo already consumed).
  const seen = new Set<string>();
  const check = async (obj: SyncObject) => {
    const key = obj.changeKey;
    if (key === undefined || !ours.has(key) || seen.has(key)) return;
    seen.add(key);
    if (!(await mirror.outbox.isEcho(pair, obj))) echoes++;
  };
  const inner = mirror.importer;
  const importer: Importer = {
    ...inner,
    update: async (obj, flags) => {
      await check(obj);
      return inner.update?.(obj, flags);
    },
    ...(inner.moved
      ? {
          moved: async (obj: SyncObject, flags: Parameters<NonNullable<Importer["moved"]>>[1]) => {
            await check(obj);
            return inner.moved?.(obj, flags);
          },
        }
      : {}),
  };
  const callbacks = {
    ...mirror.pushCallbacks,
    onPushed: (
      e: Parameters<typeof mirror.pushCallbacks.onPushed>[0],
      r: WriteResult | null,
      info: { last: boolean },
    ) => {
      if (r?.changeKey !== undefined) ours.add(r.changeKey);
      return mirror.pushCallbacks.onPushed(e, r, info);
    },
  };
  let state: string | undefined;
  const pull = async () => {
    state = await kind.pull(graph, importer, state);
    await settlePushed(target, mirror.outbox, { pair, ...mirror.pushCallbacks });
  };
  const options = {
    pair,
    policy: kind.editsOfDeletedYield ? ("server-wins" as const) : policy,
    deleteConflicts: kind.editsOfDeletedYield ? ("policy" as const) : ("keep-edit" as const),
    retry: false as const,
    ...callbacks,
  };
  try {
    await pull();
    for (const o of list) {
      if (o.t === "local") kind.local(mirror, o.op, o.pick, o.v);
      else if (o.t === "remote") kind.remote(model, o.op, o.pick, o.v);
      else if (o.t === "pull") await pull();
      else {
        try {
          await push(crashing(target, o.crashAt, o.after), mirror.outbox, options);
        } catch (error) {
          if (!(error instanceof PushBlockedError && error.cause instanceof Crash)) throw error;
        }
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
    expect(sorted(kind.rows(mirror))).toEqual(sorted(kind.live(model)));
    const keys = kind.clientKeys(model);
    expect(new Set(keys).size).toBe(keys.length);
    expect(echoes).toBe(0);
  } finally {
    mirror.close();
    await graph.close();
  }
}

const dataOf = (row: { data: unknown }) => row.data as Record<string, unknown>;

const events: Kind = {
  target: (graph) => graph.calendarWriteTarget("primary"),
  pull: (graph, importer, state) => graph.calendar("primary").sync(importer, state),
  seed: (model) => {
    model.addEvent("primary", "seed", 1);
  },
  local(mirror, op, pick, v) {
    const row = pickOf(mirror.rows(), pick);
    if (op === 0 || !row) {
      const start = new Date(emulator.model.day0 + 2 * 86_400_000);
      const time = (ms: number) => ({
        dateTime: new Date(ms).toISOString().replace("Z", ""),
        timeZone: "UTC",
      });
      mirror.edits.create({
        data: { subject: v, start: time(start.getTime()), end: time(start.getTime() + 3_600_000) },
        parentKey: "primary",
      });
    } else if (op === 3) mirror.edits.remove(row.id);
    else mirror.edits.update(row.id, { ...dataOf(row), subject: `${v}l` });
  },
  remote(model, op, pick, v) {
    const ev = pickOf(model.events.live(), pick);
    if (op === 0 || !ev) model.addEvent("primary", v, 3);
    else if (op === 3) model.deleteEvent(ev.id);
    else model.updateEvent(ev.id, { subject: `${v}r` });
  },
  rows: (mirror) => mirror.rows().map((r) => [r.sourcekey, dataOf(r).subject]),
  live: (model) => model.events.live().map((e) => [e.id, e.subject]),
  clientKeys: (model) =>
    model.events.live().flatMap((e) => (e.transactionId === undefined ? [] : [e.transactionId])),
};

const contacts: Kind = {
  target: (graph) => graph.contactsWriteTarget(),
  pull: (graph, importer, state) => graph.contacts().sync(importer, state),
  seed: (model) => {
    model.addContact("seed");
  },
  local(mirror, op, pick, v) {
    const row = pickOf(mirror.rows(), pick);
    if (op === 0 || !row)
      mirror.edits.create({
        data: { displayName: v, jobTitle: "x" },
        parentKey: "default",
        type: "user",
      });
    else if (op === 3) mirror.edits.remove(row.id);
    else mirror.edits.update(row.id, { ...dataOf(row), displayName: `${v}l` });
  },
  remote(model, op, pick, v) {
    const c = pickOf(model.contacts.live(), pick);
    if (op === 0 || !c) model.addContact(v);
    else if (op === 3) model.deleteContact(c.id);
    else model.updateContact(c.id, { displayName: `${v}r` });
  },
  rows: (mirror) => mirror.rows().map((r) => [r.sourcekey, dataOf(r).displayName]),
  live: (model) => model.contacts.live().map((c) => [c.id, c.displayName]),
  clientKeys: (model) =>
    model.contacts.live().flatMap((c) => {
      const key = c.extended?.[CLIENT_KEY_PROPERTY];
      return key === undefined ? [] : [key];
    }),
};

const FOLDERS = ["inbox", "archive"];
const messages: Kind = {
  target: (graph) => graph.mailWriteTarget(),
  pull: (graph, importer, state) => graph.mail().sync(importer, state),
  seed: (model) => {
    for (const s of ["m1", "m2", "m3"]) model.receive("inbox", s);
  },
  local(mirror, op, pick, v) {
    const row = pickOf(mirror.rows(), pick);
    if (!row) return;
    if (op === 0) mirror.edits.markRead(row.id, v === "a");
    else if (op === 1)
      mirror.edits.update(row.id, {
        ...dataOf(row),
        flag: { flagStatus: v === "a" ? "flagged" : "notFlagged" },
      });
    else if (op === 2) mirror.edits.move(row.id, FOLDERS[pick % 2] as string);
    else mirror.edits.remove(row.id);
  },
  remote(model, op, pick, v) {
    const m = pickOf(model.messages.live(), pick);
    if (op === 0 || !m) model.receive("inbox", v);
    else if (op === 1) model.updateMessage(m.id, { isRead: v === "a", flagged: v === "b" });
    else if (op === 2) model.moveMessage(m.id, FOLDERS[(pick + 1) % 2] as string);
    else model.deleteMessage(m.id);
  },
  rows: (mirror) =>
    mirror
      .rows()
      .map((r) => [
        r.sourcekey,
        r.parentKey,
        r.isRead ?? dataOf(r).isRead,
        (dataOf(r).flag as { flagStatus?: string } | undefined)?.flagStatus,
      ]),
  live: (model) =>
    model.messages
      .live()
      .map((m) => [m.id, m.parentFolderId, m.isRead, m.flagged ? "flagged" : "notFlagged"]),
  clientKeys: () => [],
  editsOfDeletedYield: true,
};

describe("two-way histories against the Graph emulator", () => {
  it("a pull between a create's write and its replay does not leave the event twice", async () => {
    // The pull copies the event under its Graph id; the write-back merges it into the app's row.
    await history(events, "client-wins", [
      { t: "local", op: 0, pick: 0, v: "a" },
      { t: "push", crashAt: 1, after: true },
      { t: "pull" },
      { t: "local", op: 0, pick: 0, v: "a" },
    ]);
  });

  it("an edit of the row a pull made between a create's write and its replay is not lost", async () => {
    // The pull copies the contact under its Graph id and the app edits that row; the create's
    // write-back merges it into the app's row and must take its pending edit along.
    await history(contacts, "client-wins", [
      { t: "local", op: 0, pick: 0, v: "a" },
      { t: "push", crashAt: 1, after: true },
      { t: "pull" },
      { t: "local", op: 3, pick: 0, v: "a" },
      { t: "local", op: 1, pick: 0, v: "a" },
    ]);
  });

  it("a local delete of a create's row that yields to the server leaves one row, not two", async () => {
    // The pull copies the event under its Graph id, the app edits that copy and deletes its own
    // row; the delete conflicts with the edit and yields, so the copy takes the server's event
    // for that row while the pulled copy still holds its key.
    await history(events, "client-wins", [
      { t: "local", op: 0, pick: 0, v: "a" },
      { t: "push", crashAt: 1, after: true },
      { t: "pull" },
      { t: "local", op: 1, pick: 2, v: "a" },
      { t: "local", op: 3, pick: 0, v: "a" },
      { t: "push", crashAt: 0, after: false },
    ]);
  });

  it("a remote move after our move, then our read flag: the pull does not hand our version back", async () => {
    // Seed 1263523549 of the random histories. The pull meets the message's removal from
    // archive first and resolves it as a move back to inbox; delivered as a delete and an
    // update, the delete consumed the echo of our read flag and the update re-delivered it.
    await history(messages, "client-wins", [
      { t: "local", op: 3, pick: 0, v: "a" },
      { t: "local", op: 2, pick: 3, v: "a" },
      { t: "push", crashAt: 0, after: false },
      { t: "remote", op: 2, pick: 1, v: "a" },
      { t: "local", op: 3, pick: 0, v: "a" },
      { t: "local", op: 0, pick: 0, v: "a" },
    ]);
  });

  it("our move pulled from the folder it left first is our echo, not a remote change", async () => {
    // The pull reads archive before inbox: our move back to inbox is first seen as a removal
    // from archive, resolved to a move (the other histories only moved into archive).
    await history(messages, "client-wins", [
      { t: "local", op: 2, pick: 1, v: "a" },
      { t: "push", crashAt: 0, after: false },
      { t: "pull" },
      { t: "local", op: 2, pick: 4, v: "a" },
      { t: "push", crashAt: 0, after: false },
    ]);
  });

  const policies = fc.constantFrom<ConflictPolicy>("client-wins", "server-wins", "ask");
  for (const [name, kind] of [
    ["events", events],
    ["contacts", contacts],
    ["messages (flags, moves, deletes)", messages],
  ] as const) {
    it(`${name}: ${RUNS} histories with crashes converge, no duplicate, no echo`, async () => {
      await fc.assert(
        fc.asyncProperty(policies, ops, (policy, list) => history(kind, policy, list)),
        {
          numRuns: RUNS,
          // Replays a failure: GRAPH_TWO_WAY_SEED and GRAPH_TWO_WAY_PATH from its report.
          ...(process.env.GRAPH_TWO_WAY_SEED
            ? {
                seed: Number(process.env.GRAPH_TWO_WAY_SEED),
                path: process.env.GRAPH_TWO_WAY_PATH,
                endOnFailure: true,
              }
            : {}),
        },
      );
    });
  }
});
