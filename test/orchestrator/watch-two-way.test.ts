/**
 * `watch` in two-way mode against the memory server and the SQLite mirror: local edits reach the
 * server without a push call, remote edits arrive, a conflict pauses only its pair, `resolve`
 * resumes it, and an abort stops cleanly with nothing lost.
 */
import Database from "better-sqlite3";
import type { Subscription } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryServer, type MemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { createSqliteMirror, type SqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { type WatchResult, type WatchTwoWay, watch } from "../../src/orchestrator/watch.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { push } from "../../src/two-way/push.js";
import type { WriteTarget } from "../../src/two-way/types.js";

/** Waits for a condition the watch makes true (the test's timeout bounds it, not a clock). */
function until(predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (predicate() ? resolve() : setTimeout(check, 2));
    check();
  });
}

const subs: Subscription[] = [];
afterEach(() => {
  for (const s of subs.splice(0)) s.unsubscribe();
});

interface Pair {
  pair: string;
  folderKey: string;
  keys: string[];
  mirror: SqliteMirror;
  target: WriteTarget;
  results: WatchResult[];
  errors: unknown[];
  done: { completed: boolean; error?: unknown };
  rowOf(sourcekey: string): { id: string; data: unknown };
}

/** One folder of `server` watched two-way into its own mirror (one pair). */
function watched(
  server: MemoryServer,
  db: Database.Database,
  name: string,
  options: { target?: (t: WriteTarget) => WriteTarget; signal?: AbortSignal } = {},
): Pair {
  const store = server.store("alice");
  const folder = store.createFolder({ name, kind: "mail" });
  const keys = [folder.createItem({ s: `${name}-a` }), folder.createItem({ s: `${name}-b` })];
  const pair = `memory:alice/${name}`;
  const base = memoryWriteTarget(server, folder.sourcekey);
  const target = options.target ? options.target(base) : base;
  const mirror = createSqliteMirror(db, { source: pair, table: name, keyFor: target.keyFor });
  const results: WatchResult[] = [];
  const errors: unknown[] = [];
  const done: Pair["done"] = { completed: false };
  const twoWay: WatchTwoWay = {
    target,
    outbox: mirror.outbox,
    pair,
    policy: "ask",
    ...mirror.pushCallbacks,
  };
  subs.push(
    watch(store.folder(folder.sourcekey), {
      ...mirror.callbacks,
      store: createMemoryStateStore(),
      key: pair,
      pollIntervalMs: 0, // no safety poll: only notifications and local edits start rounds
      debounceMs: 1,
      signal: options.signal,
      onError: (e) => errors.push(e),
      twoWay,
    }).subscribe({
      next: (r) => results.push(r),
      error: (e) => {
        done.error = e;
      },
      complete: () => {
        done.completed = true;
      },
    }),
  );
  const rowOf = (sourcekey: string) => {
    const row = mirror.get(sourcekey);
    if (!row) throw new Error(`no row ${sourcekey}`);
    return row;
  };
  return { pair, folderKey: folder.sourcekey, keys, mirror, target, results, errors, done, rowOf };
}

function setup() {
  const server = createMemoryServer();
  server.createStore("alice");
  const db = new Database(":memory:");
  return { server, db };
}

const fieldsOf = (server: MemoryServer, key: string) => server.item(key).fields;

describe("watch, two-way mode", () => {
  it("a local edit reaches the server without a push call; a remote edit arrives", async () => {
    const { server, db } = setup();
    const p = watched(server, db, "inbox");
    await until(() => p.results.length >= 1);
    expect(p.results[0]).toMatchObject({ trigger: "initial", updated: 2 });
    expect(p.results[0]?.push).toMatchObject({ status: "done", pushed: 0 });

    const [a, b] = p.keys as [string, string];
    p.mirror.edits.update(p.rowOf(a).id, { fields: { s: "local" } });
    const created = p.mirror.edits.create({
      data: { fields: { s: "new" } },
      parentKey: p.folderKey,
    });
    await until(() => server.allItems().length === 3 && fieldsOf(server, a).s === "local");
    expect(fieldsOf(server, p.target.keyFor(created))).toEqual({ s: "new" });
    await until(() => p.results.some((r) => r.trigger === "local" && (r.push?.pushed ?? 0) > 0));
    expect(await p.mirror.outbox.pending(p.pair)).toEqual([]);

    server.updateItem(b, { s: "remote" });
    await until(() => (p.rowOf(b).data as { fields: { s: string } }).fields.s === "remote");
    expect(p.results.some((r) => r.trigger === "push" && r.updated > 0)).toBe(true);
    // Our own push is not delivered back as a remote edit, and nothing failed.
    expect((p.rowOf(a).data as { fields: unknown }).fields).toEqual({ s: "local" });
    expect(p.errors).toEqual([]);
  });

  it("a conflict pauses only its pair; pulls go on; resolve resumes the push", async () => {
    const { server, db } = setup();
    const one = watched(server, db, "one");
    const two = watched(server, db, "two");
    await until(() => one.results.length >= 1 && two.results.length >= 1);

    const [a, b] = one.keys as [string, string];
    // Both sides change `a` before the pusher runs: the conditional write meets the remote edit.
    server.updateItem(a, { s: "theirs" });
    one.mirror.edits.update(one.rowOf(a).id, { fields: { s: "mine" } });
    await until(() => one.results.some((r) => r.push?.status === "paused"));
    const paused = one.results.find((r) => r.push?.status === "paused");
    const conflict = paused?.push?.conflict;
    expect(conflict).toMatchObject({ kind: "edit", pair: one.pair, status: "open" });
    expect(fieldsOf(server, a)).toEqual({ s: "theirs" });

    // The paused pair's later local edit waits …
    one.mirror.edits.update(one.rowOf(b).id, { fields: { s: "waiting" } });
    // … while the other pair pushes …
    const [c] = two.keys as [string];
    two.mirror.edits.update(two.rowOf(c).id, { fields: { s: "two-local" } });
    await until(() => fieldsOf(server, c).s === "two-local");
    // … and the paused pair still pulls.
    const other = one.mirror.edits.create({
      data: { fields: { s: "x" } },
      parentKey: one.folderKey,
    });
    const remoteNew = server.folder(one.folderKey).createItem({ s: "remote-new" });
    await until(() => one.mirror.get(remoteNew) !== undefined);
    expect(fieldsOf(server, b)).toEqual({ s: `${"one"}-b` });
    expect((await one.mirror.outbox.pending(one.pair)).map((e) => e.kind)).toEqual([
      "update",
      "update",
      "create",
    ]);

    await one.mirror.outbox.resolve(conflict?.id as string, "local");
    await until(
      () =>
        fieldsOf(server, a).s === "mine" &&
        fieldsOf(server, b).s === "waiting" &&
        server.allItems().some((i) => i.sourcekey === one.target.keyFor(other)),
    );
    expect(one.results.some((r) => r.trigger === "resolve")).toBe(true);
    await until(() => one.results.at(-1)?.push?.status === "done");
    expect(await one.mirror.outbox.pending(one.pair)).toEqual([]);
    expect(await one.mirror.outbox.conflicts(one.pair)).toEqual([]);
    expect(one.errors).toEqual([]);
    expect(two.errors).toEqual([]);
  });

  it("an abort during a push stops cleanly; the entry stays and a later push sends it", async () => {
    const { server, db } = setup();
    const controller = new AbortController();
    let writing = false;
    const p = watched(server, db, "inbox", {
      signal: controller.signal,
      // A write that hangs until aborted: the abort arrives mid-push.
      target: (t) => ({
        ...t,
        update: (_e, ctx) =>
          new Promise((_resolve, reject) => {
            writing = true;
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
          }),
      }),
    });
    await until(() => p.results.length >= 1);
    const [a] = p.keys as [string];
    p.mirror.edits.update(p.rowOf(a).id, { fields: { s: "after-abort" } });
    await until(() => writing);
    controller.abort();
    await until(() => p.done.completed);
    expect(p.done.error).toBeUndefined();
    expect(p.errors).toEqual([]);
    const pending = await p.mirror.outbox.pending(p.pair);
    expect(pending.map((e) => e.kind)).toEqual(["update"]);
    expect(fieldsOf(server, a)).toEqual({ s: "inbox-a" });

    // Nothing was lost: the next push (a fresh target) sends it.
    const target = memoryWriteTarget(server, p.folderKey);
    const result = await push(target, p.mirror.outbox, { pair: p.pair, ...p.mirror.pushCallbacks });
    expect(result).toMatchObject({ status: "done", pushed: 1 });
    expect(fieldsOf(server, a)).toEqual({ s: "after-abort" });
  });
});
