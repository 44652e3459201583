/**
 * runSync at the boundaries issue 10 found: a failed first full sync (item 2), a reset whose
 * full sync then fails (item 3), and the SQLite mirror's sweep across processes.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { ImporterError, StateInvalidError } from "../../src/core/errors.js";
import { decodeState } from "../../src/core/state.js";
import { KeyedRunner } from "../../src/orchestrator/keyed.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { callbackMirror, createFakeScope, type FakeData } from "./fake.js";

const noWait = { retries: 0 };

function crashAfter(n: number, inner: (records: never[]) => unknown) {
  let calls = 0;
  return (records: never[]) => {
    calls += records.length;
    if (calls > n) throw new Error("process killed");
    return inner(records);
  };
}

describe("runSync: a failed first full sync, then deletes", () => {
  it("the retried full sync sweeps what was deleted meanwhile (onFullSyncBegin/End)", async () => {
    const fake = createFakeScope({ items: 10, pageSize: 3 });
    const store = createMemoryStateStore();
    const { mirror, callbacks } = callbackMirror();
    let generation = 0;
    const seen = new Map<string, number>();
    const sweeping = {
      ...callbacks,
      onUpdated: (records: { sourcekey: string; data: FakeData }[]) => {
        for (const r of records) seen.set(r.sourcekey, generation);
        callbacks.onUpdated(records);
      },
      onFullSyncBegin: () => {
        generation++;
      },
      onFullSyncEnd: () => {
        for (const key of [...mirror.keys()]) {
          if ((seen.get(key) ?? 0) < generation) mirror.delete(key);
        }
      },
    };
    // Batch 1 is written, then the process dies before the state was ever saved.
    await expect(
      runSync(fake.syncable, {
        ...sweeping,
        onUpdated: crashAfter(2, sweeping.onUpdated as never),
        store,
        batchSize: 2,
        retry: noWait,
      }),
    ).rejects.toBeInstanceOf(ImporterError);
    expect(mirror.size).toBe(2);
    expect(await store.get("fake:folder:fake")).toBeDefined();
    fake.remove("k000000"); // written to the copy by the dead run, deleted on the server
    await store.delete("fake:folder:fake"); // the worst case: nothing saved at all
    await runSync(fake.syncable, { ...sweeping, store, batchSize: 2, retry: noWait });
    expect(mirror).toEqual(fake.truth());
  });
});

describe("runSync: a reset whose full sync fails", () => {
  it("saves 'full sync from nothing' before onReset, so the refused state never comes back", async () => {
    const fake = createFakeScope({ items: 6, pageSize: 2 });
    const store = createMemoryStateStore();
    const runner = new KeyedRunner();
    const { mirror, callbacks } = callbackMirror();
    await runSync(fake.syncable, { ...callbacks, store, runner, batchSize: 2 });
    const old = await store.get("fake:folder:fake");
    // The server refuses the state once (then would accept it again, as some servers do).
    let refused = false;
    fake.fault = (_n, req) => {
      if (req.cursor !== undefined && !refused) {
        refused = true;
        throw new StateInvalidError("410 once");
      }
    };
    let savedAtReset: string | undefined;
    await expect(
      runSync(fake.syncable, {
        ...callbacks,
        onReset: async () => {
          savedAtReset = await store.get("fake:folder:fake");
          callbacks.onReset();
        },
        onUpdated: crashAfter(2, callbacks.onUpdated as never),
        store,
        runner,
        batchSize: 2,
        retry: noWait,
      }),
    ).rejects.toBeInstanceOf(ImporterError);
    expect(savedAtReset).toBeDefined();
    expect(savedAtReset).not.toBe(old);
    const env = decodeState(savedAtReset as string, "fake", "folder:fake");
    expect(env).toMatchObject({ fullSync: true, cursor: undefined, page: undefined });
    // The restart full-syncs from nothing instead of resuming the wiped copy with a delta.
    const result = await runSync(fake.syncable, { ...callbacks, store, runner, batchSize: 2 });
    expect(result.fullSync).toBe(true);
    expect(mirror).toEqual(fake.truth());
  });
});

describe("SQLite mirror: full syncs are swept by generation", () => {
  it("rows a full sync did not send are deleted at its end, also when another process resumes it", async () => {
    const server = createMemoryServer({ pageSize: 2, epoch: "sweep" });
    const folder = server.createStore("alice").createFolder({ name: "Inbox", kind: "mail" });
    const keys = [1, 2, 3, 4, 5].map((n) => folder.createItem({ subject: `m${n}` }));
    const db = new Database(":memory:");
    const states = createMemoryStateStore();
    const first = createSqliteMirror(db, { source: "t" });
    await runSync(folder, { ...first.callbacks, store: states, batchSize: 2 });
    expect(first.count()).toBe(5);
    // A full sync that dies after one batch; meanwhile two messages are deleted on the server.
    await states.delete(`memory:folder:${folder.sourcekey}`);
    await expect(
      runSync(folder, {
        ...first.callbacks,
        onUpdated: crashAfter(2, first.callbacks.onUpdated as never),
        store: states,
        batchSize: 2,
      }),
    ).rejects.toBeInstanceOf(ImporterError);
    server.deleteItem(keys[3] as string);
    server.deleteItem(keys[4] as string);
    expect(first.count()).toBe(5); // still readable while the resync is under way
    // Another process (a new mirror object over the same database) resumes the full sync.
    const second = createSqliteMirror(db, { source: "t" });
    await runSync(folder, { ...second.callbacks, store: states, batchSize: 2 });
    expect(
      second
        .rows()
        .map((r) => r.sourcekey)
        .sort(),
    ).toEqual(keys.slice(0, 3).sort());
  });

  it("adds the generation column to a mirror table made before it existed", () => {
    const db = new Database(":memory:");
    db.exec(`CREATE TABLE mirror (source TEXT NOT NULL, sourcekey TEXT NOT NULL, id TEXT NOT NULL UNIQUE,
      type TEXT NOT NULL, parent_key TEXT, change_key TEXT, data TEXT NOT NULL, is_read INTEGER,
      created_locally TEXT NOT NULL, updated_locally TEXT NOT NULL, updated_at_source TEXT NOT NULL,
      PRIMARY KEY (source, sourcekey))`);
    const mirror = createSqliteMirror(db, { source: "old" });
    mirror.importer.beginFullSync?.();
    mirror.importer.update?.({ sourcekey: "a", type: "item", data: {} }, { created: true });
    mirror.importer.endFullSync?.();
    expect(mirror.count()).toBe(1);
  });
});
