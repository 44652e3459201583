/**
 * Random histories of local edits, remote edits, pulls, and pushes that crash at every step
 * (before the write, after the server accepted it, in the write-back): after quiescence the
 * app's copy equals the server, nothing was created twice, and every local edit is on the
 * server unless a conflict record (or a later remote change) accounts for it.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { PushBlockedError } from "../../src/core/errors.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { type PushOptions, push } from "../../src/two-way/push.js";
import type { ConflictPolicy, Resolution, WriteTarget } from "../../src/two-way/types.js";
import { App } from "./app.js";

type Op =
  | { t: "lcreate"; folder: number; v: string }
  | { t: "lupdate"; pick: number; v: string }
  | { t: "ldelete"; pick: number }
  | { t: "lread"; pick: number; b: boolean }
  | { t: "lmove"; pick: number; folder: number }
  | { t: "rcreate"; folder: number; v: string }
  | { t: "rupdate"; pick: number; v: string }
  | { t: "rdelete"; pick: number }
  | { t: "rread"; pick: number; b: boolean }
  | { t: "rmove"; pick: number; folder: number }
  | { t: "push"; crashAt: number; where: "before" | "after" | "writeback" }
  | { t: "pull" }
  | { t: "resolve"; choice: number };

const v = fc.constantFrom("a", "b", "c");
const pick = fc.nat(20);
const folder = fc.nat(1);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant("lcreate" as const), folder, v }),
  { weight: 3, arbitrary: fc.record({ t: fc.constant("lupdate" as const), pick, v }) },
  fc.record({ t: fc.constant("ldelete" as const), pick }),
  fc.record({ t: fc.constant("lread" as const), pick, b: fc.boolean() }),
  fc.record({ t: fc.constant("lmove" as const), pick, folder }),
  fc.record({ t: fc.constant("rcreate" as const), folder, v }),
  { weight: 2, arbitrary: fc.record({ t: fc.constant("rupdate" as const), pick, v }) },
  fc.record({ t: fc.constant("rdelete" as const), pick }),
  fc.record({ t: fc.constant("rread" as const), pick, b: fc.boolean() }),
  fc.record({ t: fc.constant("rmove" as const), pick, folder }),
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("push" as const),
      crashAt: fc.nat(4),
      where: fc.constantFrom("before" as const, "after" as const, "writeback" as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("pull" as const) }) },
  fc.record({ t: fc.constant("resolve" as const), choice: fc.nat(2) }),
);

const policies = ["ask", "client-wins", "server-wins", "merge"] as const;
const PAIR = "memory:alice";

class Crash extends Error {}

/** The target, crashing once at write number `at` (0: never) before or after the write. */
function crashing(target: WriteTarget, at: number, where: "before" | "after"): WriteTarget {
  let n = 0;
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const crash = ++n === at;
      if (crash && where === "before") throw new Crash("before write");
      const r = await fn(...a);
      if (crash) throw new Crash("after write");
      return r;
    };
  const t = target as Required<WriteTarget>;
  return {
    ...target,
    create: wrap(t.create),
    update: wrap(t.update),
    delete: wrap(t.delete),
    move: wrap(t.move),
    read: wrap(t.read),
  };
}

async function runHistory(policyName: (typeof policies)[number], ops: Op[]): Promise<void> {
  const server = createMemoryServer();
  const store = server.createStore("alice");
  const folders = [
    store.createFolder({ name: "F", kind: "mail" }).sourcekey,
    store.createFolder({ name: "G", kind: "mail" }).sourcekey,
  ];
  for (const s of ["a", "b", "c"]) server.folder(folders[0] as string).createItem({ s });
  const outbox = createOutbox(createMemoryStateStore());
  const target = memoryWriteTarget(server, folders[0] as string);
  const app = new App(outbox, PAIR, target);
  let state: string | undefined;
  const pull = async () => {
    state = await store.items.sync(app.importer, state);
  };
  const policy: ConflictPolicy =
    policyName === "merge"
      ? (c) => ({
          merged: {
            fields: {
              ...((c.remote?.data as { fields?: object } | undefined)?.fields ?? {}),
              ...((c.entry as { data?: { fields?: object } }).data?.fields ?? {}),
              merged: true,
            },
          },
        })
      : policyName;
  const options = (extra: Partial<PushOptions> = {}): PushOptions => ({
    pair: PAIR,
    policy,
    retry: false,
    ...app.callbacks,
    ...extra,
  });
  // What each local id last asked for, and when (op index); remote touches by sourcekey.
  const lastLocal = new Map<string, { i: number; sourcekey: string; want: unknown }>();
  const remoteAt = new Map<string, number>();
  const created = new Set<string>();

  await pull();
  const rows = () => [...app.rows.keys()].sort();
  const items = () => server.allItems().sort((a, b) => (a.sourcekey < b.sourcekey ? -1 : 1));
  for (const [i, o] of ops.entries()) {
    const localId = rows()[("pick" in o ? o.pick : 0) % Math.max(1, app.rows.size)];
    const item = items()[("pick" in o ? o.pick : 0) % Math.max(1, server.allItems().length)];
    switch (o.t) {
      case "lcreate": {
        const id = await app.create(folders[o.folder] as string, { s: o.v });
        created.add(id);
        lastLocal.set(id, {
          i,
          sourcekey: app.rows.get(id)?.sourcekey as string,
          want: { s: o.v },
        });
        break;
      }
      case "lupdate":
        if (!localId) break;
        await app.update(localId, { s: o.v });
        lastLocal.set(localId, {
          i,
          sourcekey: app.rows.get(localId)?.sourcekey as string,
          want: { s: o.v },
        });
        break;
      case "ldelete":
        if (!localId) break;
        lastLocal.set(localId, {
          i,
          sourcekey: app.rows.get(localId)?.sourcekey as string,
          want: null,
        });
        await app.remove(localId);
        break;
      case "lread":
        if (localId) await app.markRead(localId, o.b);
        break;
      case "lmove":
        if (localId) await app.move(localId, folders[o.folder] as string);
        break;
      case "rcreate":
        server.folder(folders[o.folder] as string).createItem({ s: o.v });
        break;
      case "rupdate":
        if (!item) break;
        server.updateItem(item.sourcekey, { s: o.v });
        remoteAt.set(item.sourcekey, i);
        break;
      case "rdelete":
        if (!item) break;
        server.deleteItem(item.sourcekey);
        remoteAt.set(item.sourcekey, i);
        break;
      case "rread":
        if (item) server.markRead(item.sourcekey, o.b);
        break;
      case "rmove":
        if (item) server.moveItem(item.sourcekey, folders[o.folder] as string);
        break;
      case "push": {
        const crashWriteback = o.where === "writeback";
        const t = o.where === "writeback" ? target : crashing(target, o.crashAt, o.where);
        let n = 0;
        const extra: Partial<PushOptions> = crashWriteback
          ? {
              onPushed: (e, r, info) => {
                if (++n === o.crashAt) throw new Crash("in write-back");
                return app.callbacks.onPushed?.(e, r, info);
              },
            }
          : {};
        try {
          await push(t, outbox, options(extra));
        } catch (error) {
          const crashed =
            error instanceof Crash ||
            (error instanceof PushBlockedError && error.cause instanceof Crash);
          if (!crashed) throw error;
        }
        break;
      }
      case "pull": {
        await pull();
        // A pull never clobbers a local edit that is still pending.
        const pending = await outbox.pending(PAIR);
        for (const id of new Set(pending.map((e) => e.localId))) {
          const mine = pending.filter((x) => x.localId === id);
          const last = mine.at(-1);
          const edit = mine.filter((x) => x.kind === "update" || x.kind === "create").at(-1);
          if (last?.kind === "delete") expect(app.rows.has(id)).toBe(false);
          else if (edit && !edit.merged)
            expect(app.rows.get(id)?.fields).toEqual(
              (edit as { data: { fields: unknown } }).data.fields,
            );
        }
        break;
      }
      case "resolve": {
        const resolutions: Resolution[] = ["local", "remote", { merged: { fields: { s: "m" } } }];
        for (const c of await outbox.conflicts(PAIR)) {
          await outbox.resolve(c.id, resolutions[o.choice] as Resolution);
        }
        break;
      }
    }
  }

  // Quiescence: push (resolving what the policy asks about) and pull until nothing is left.
  for (let round = 0; ; round++) {
    expect(round, "quiescence within 30 rounds").toBeLessThan(30);
    const r = await push(target, outbox, options());
    if (r.status === "paused") {
      await outbox.resolve((r.conflict as { id: string }).id, round % 2 ? "remote" : "local");
      continue;
    }
    await pull();
    if ((await outbox.pending(PAIR)).length === 0) break;
  }
  await pull();

  // 1. The app's copy equals the server.
  const serverView: Record<string, unknown> = {};
  for (const it of items()) {
    serverView[it.sourcekey] = { parentKey: it.parentKey, fields: it.fields, read: it.read };
  }
  expect(app.snapshot()).toEqual(serverView);

  // 2. No duplicate creates: at most one live server item per created local id.
  for (const id of created) {
    const copies = items().filter(
      (it) => it.sourcekey === `local:${id}` || it.sourcekey.startsWith(`local:${id}.`),
    );
    expect(copies.length, `copies of ${id}`).toBeLessThanOrEqual(1);
  }

  // 3. Every local edit's last wish is on the server, unless a conflict or a later remote
  //    change of the same object accounts for it.
  const conflicts = await outbox.conflicts(PAIR, { all: true });
  // 4. No conflict without a remote change of that object (our own writes never conflict).
  for (const c of conflicts) {
    expect(remoteAt.has(c.entry.sourcekey), `conflict ${c.id} (${c.kind}) has a remote cause`).toBe(
      true,
    );
  }
  for (const [id, wish] of lastLocal) {
    const touched = conflicts.some((c) => c.entry.localId === id);
    const later = (remoteAt.get(wish.sourcekey) ?? -1) > wish.i;
    if (touched || later) continue;
    const row = app.rows.get(id);
    if (wish.want === null) {
      expect(row, `local delete of ${id} kept`).toBeUndefined();
      expect(items().some((it) => it.sourcekey === wish.sourcekey)).toBe(false);
    } else {
      expect(row?.fields, `local edit of ${id}`).toEqual(wish.want);
    }
  }
}

describe("two-way properties (memory)", () => {
  test.prop([fc.constantFrom(...policies), fc.array(op, { minLength: 1, maxLength: 40 })], {
    numRuns: Number(process.env.TWO_WAY_RUNS ?? 300),
  })("push + pull converge without losing local edits", async (policy, ops) => {
    await runHistory(policy, ops);
  });
});
