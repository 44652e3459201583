/**
 * Two-way histories against a real IMAP server: an app's SQLite mirror of the server-wide scope
 * (INBOX, A, B) edited locally (APPEND into A, flags, \Seen, MOVE, delete), a second client
 * editing the server (APPEND, flags, EXPUNGE, MOVE), pushes that crash before or after the
 * server's write, pulls in between. After quiescence the mirror equals the server, no create is
 * on the server twice, every create is there unless a delete or a conflict record accounts for
 * it, and a history without remote edits records no conflict (our own writes never come back
 * as someone else's). The driver follows test/two-way/dav-two-way.ts.
 */
import Database from "better-sqlite3";
import fc from "fast-check";
import { expect } from "vitest";
import type { ImapMessage } from "../../adapters/imap/index.js";
import { PushBlockedError } from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { push } from "../../src/two-way/push.js";
import { settlePushed } from "../../src/two-way/settle.js";
import type { ConflictPolicy, WriteTarget } from "../../src/two-way/types.js";
import type { ImapTestServer } from "./harness.js";
import { rawMessage } from "./harness.js";
import { inBox, writeFixture } from "./write-suite.js";

const BOXES = ["INBOX", "A", "B"] as const;
const FLAGS = ["\\Flagged", "$Work"] as const;

type Op =
  | { t: "lcreate"; seen: boolean }
  | { t: "lflag"; pick: number; flag: number }
  | { t: "lread"; pick: number }
  | { t: "ldelete"; pick: number }
  | { t: "lmove"; pick: number; to: number }
  | { t: "rappend"; box: number }
  | { t: "rflag"; box: number; pick: number; flag: number }
  | { t: "rexpunge"; box: number; pick: number }
  | { t: "rmove"; box: number; pick: number; to: number }
  | { t: "push"; crashAt: number; after: boolean }
  | { t: "pull" };

const pick = fc.nat(10);
const box = fc.nat(2);
const flag = fc.nat(1);
export const imapOps = fc.array(
  fc.oneof(
    { weight: 2, arbitrary: fc.record({ t: fc.constant("lcreate" as const), seen: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant("lflag" as const), pick, flag }) },
    fc.record({ t: fc.constant("lread" as const), pick }),
    fc.record({ t: fc.constant("ldelete" as const), pick }),
    fc.record({ t: fc.constant("lmove" as const), pick, to: box }),
    fc.record({ t: fc.constant("rappend" as const), box }),
    fc.record({ t: fc.constant("rflag" as const), box, pick, flag }),
    fc.record({ t: fc.constant("rexpunge" as const), box, pick }),
    fc.record({ t: fc.constant("rmove" as const), box, pick, to: box }),
    {
      weight: 3,
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

class Crash extends Error {
  constructor(
    message: string,
    readonly method: string,
  ) {
    super(message);
  }
}

/** The target, with its `at`-th write failing before or after the server's write. */
function crashing(target: WriteTarget, at: number, after: boolean): WriteTarget {
  let n = 0;
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>, method: string) =>
    async (...a: A): Promise<R> => {
      const crash = ++n === at;
      if (crash && !after) throw new Crash("before write", method);
      const r = await fn(...a);
      if (crash) throw new Crash("after write", method);
      return r;
    };
  const move = target.move;
  const read = target.read;
  return {
    ...target,
    create: wrap(target.create, "create"),
    update: wrap(target.update, "update"),
    delete: wrap(target.delete, "delete"),
    ...(move ? { move: wrap(move, "move") } : {}),
    ...(read ? { read: wrap(read, "read") } : {}),
  };
}

interface Truth {
  flags: string[];
  seen: boolean;
  messageId?: string;
}

export async function imapTwoWayHistory(
  server: ImapTestServer,
  policy: "client-wins" | "server-wins" | "ask",
  ops: Op[],
): Promise<void> {
  const fx = await writeFixture(server, "h");
  const { other, account } = fx;
  const db = new Database(":memory:");
  const target = account.writeTarget("A", { qualified: true });
  const pair = `imap:${fx.user}`;
  const mirror = createSqliteMirror(db, {
    source: pair,
    keyFor: target.keyFor,
    readOf: (obj: SyncObject) => (obj.data as Partial<ImapMessage>).seen === true,
  });
  const scope = account.server();
  let state: string | undefined;
  const pull = async () => {
    state = await scope.sync(mirror.importer, state);
    await settlePushed(target, mirror.outbox, { pair, ...mirror.pushCallbacks });
  };
  const options = {
    pair,
    policy: policy as ConflictPolicy,
    retry: false as const,
    ...mirror.pushCallbacks,
  };

  /** What the server holds, per the second client, keyed like the server scope. */
  const truth = async (): Promise<Map<string, Truth>> => {
    const out = new Map<string, Truth>();
    for (const b of BOXES) {
      await inBox(other, b, async () => {
        const v = String(other.mailbox ? other.mailbox.uidValidity : "");
        if (!other.mailbox || other.mailbox.exists === 0) return;
        for await (const m of other.fetch("1:*", { uid: true, flags: true, envelope: true })) {
          const flags = [...(m.flags ?? [])].filter((f) => f !== "\\Seen" && f !== "\\Recent");
          out.set(`${b}/${v}:${m.uid}`, {
            flags: flags.sort(),
            seen: m.flags?.has("\\Seen") ?? false,
            messageId: m.envelope?.messageId,
          });
        }
      });
    }
    return out;
  };

  const created: string[] = [];
  const deletedLocally = new Set<string>();
  const expunged = new Set<string>();
  let remoteEdits = 0;
  // An APPEND that landed before a crash, not yet committed: a remote MOVE of that message to
  // another mailbox hides it from the replay's search (docs/adapters/imap.md, "Limits").
  let appendedUncommitted = false;
  let movedAway = false;
  // A MOVE that landed before a crash replays as a vanished message (a remote-delete conflict
  // the keep-edit rule settles; docs/adapters/imap.md, "Two-way sync").
  let moveCrashed = false;
  let n = 0;
  try {
    await other.append("A", rawMessage("seed"));
    await pull();
    for (const o of ops) {
      const rows = mirror.rows();
      const row =
        "pick" in o && o.t.startsWith("l") ? rows[o.pick % Math.max(1, rows.length)] : undefined;
      const data = row?.data as Partial<ImapMessage> | undefined;
      switch (o.t) {
        case "lcreate": {
          const source = Buffer.from(rawMessage(`l${++n}`)).toString("base64");
          created.push(
            mirror.edits.create({ data: { source, flags: [], seen: o.seen }, parentKey: "A" }),
          );
          break;
        }
        case "lflag":
          if (row && data) {
            const f = FLAGS[o.flag] as string;
            const had = (data.flags ?? []).includes(f);
            const flags = had
              ? (data.flags ?? []).filter((x) => x !== f)
              : [...(data.flags ?? []), f];
            mirror.edits.update(row.id, { ...data, flags: flags.sort() });
          }
          break;
        case "lread":
          if (row) mirror.edits.markRead(row.id, !row.isRead);
          break;
        case "ldelete":
          if (row) {
            deletedLocally.add(row.id);
            mirror.edits.remove(row.id);
          }
          break;
        case "lmove":
          // A move of a row whose create is not pushed yet folds into the create (APPEND there).
          if (row && row.parentKey !== BOXES[o.to])
            mirror.edits.move(row.id, BOXES[o.to] as string);
          break;
        case "rappend":
          remoteEdits++;
          await other.append(BOXES[o.box] as string, rawMessage(`r${++n}`));
          break;
        case "rflag":
        case "rexpunge":
        case "rmove": {
          const b = BOXES[o.box] as string;
          await inBox(other, b, async () => {
            const uids = (await other.search({ all: true }, { uid: true })) || [];
            const uid = uids[o.pick % Math.max(1, uids.length)];
            if (uid === undefined) return;
            remoteEdits++;
            if (o.t === "rflag") {
              const f = FLAGS[o.flag] as string;
              const m =
                (await other.fetchOne(String(uid), { flags: true }, { uid: true })) || undefined;
              if (m?.flags?.has(f)) await other.messageFlagsRemove(String(uid), [f], { uid: true });
              else await other.messageFlagsAdd(String(uid), [f], { uid: true });
            } else if (o.t === "rexpunge") {
              const m =
                (await other.fetchOne(String(uid), { envelope: true }, { uid: true })) || undefined;
              if (m?.envelope?.messageId) expunged.add(m.envelope.messageId);
              await other.messageDelete(String(uid), { uid: true });
            } else if (BOXES[o.to] !== b) {
              if (appendedUncommitted) movedAway = true;
              await other.messageMove(String(uid), BOXES[o.to] as string, { uid: true });
            }
          });
          break;
        }
        case "push":
          try {
            await push(crashing(target, o.crashAt, o.after), mirror.outbox, options);
            appendedUncommitted = false;
          } catch (error) {
            if (!(error instanceof PushBlockedError && error.cause instanceof Crash)) throw error;
            if (o.after && error.cause.method === "create") appendedUncommitted = true;
            if (o.after && error.cause.method === "move") moveCrashed = true;
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

    // The mirror equals the server: the same messages, flags and \Seen.
    const server = await truth();
    const rows = mirror.rows();
    const mine = Object.fromEntries(
      rows.map((r) => {
        const d = r.data as Partial<ImapMessage>;
        return [r.sourcekey, { flags: [...(d.flags ?? [])].sort(), seen: r.isRead === true }];
      }),
    );
    const theirs = Object.fromEntries(
      [...server].map(([k, t]) => [k, { flags: t.flags, seen: t.seen }]),
    );
    expect(mine).toEqual(theirs);
    // No create made twice; every create there unless a delete or a conflict accounts for it.
    const ids = [...server.values()].flatMap((t) => (t.messageId ? [t.messageId] : []));
    if (!movedAway) expect(new Set(ids).size).toBe(ids.length);
    const conflicts = await mirror.outbox.conflicts(pair, { all: true });
    for (const localId of created) {
      const id = target.keyFor(localId);
      const accounted =
        ids.includes(id) ||
        deletedLocally.has(localId) ||
        expunged.has(id) ||
        conflicts.some((c) => c.entry.localId === localId);
      expect(accounted, `create ${localId} (${id}) is lost`).toBe(true);
    }
    // Without remote edits, nothing conflicts: our own writes are never taken for theirs.
    if (remoteEdits === 0) {
      const replayedMove = (c: (typeof conflicts)[number]) =>
        moveCrashed && c.kind === "remote-delete" && c.entry.kind === "move";
      expect(conflicts.filter((c) => !replayedMove(c))).toEqual([]);
    }
  } finally {
    await fx.close();
    mirror.close();
    db.close();
  }
}
