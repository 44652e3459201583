import { spawnSync } from "node:child_process";
import diagnostics_channel from "node:diagnostics_channel";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { generateDemoServer } from "../../src/cli/demo-data.js";
import { TransientError } from "../../src/core/errors.js";
import { createSyncable, type Syncable } from "../../src/core/syncable.js";
import { registerSecret } from "../../src/orchestrator/redact.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { channels } from "../../src/orchestrator/telemetry.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { openKillScenario } from "./kill-scenario.js";

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "deltasync-kill-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function truthOf(syncable: Syncable) {
  const truth = new Map<string, unknown>();
  await syncable.sync({
    update: (o) => void truth.set(o.sourcekey, o.data),
    delete: (o) => void truth.delete(o.sourcekey),
  });
  return truth;
}

describe("fault injection", () => {
  it.each([
    [1, "beforeCommit"],
    [1, "afterCommit"],
    [1, "afterSave"],
    [4, "beforeCommit"],
    [4, "afterCommit"],
    [4, "afterSave"],
    [7, "afterSave"],
  ])("process.kill at batch %i (%s): resuming gives mirror == truth", async (killAt, phase) => {
    const dbFile = join(dir, `kill-${killAt}-${phase}.sqlite`);
    const child = spawnSync(
      process.execPath,
      ["--import", "tsx", "test/orchestrator/kill-child.ts", dbFile],
      {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, KILL_AT: String(killAt), KILL_PHASE: phase },
      },
    );
    expect(child.signal).toBe("SIGKILL");
    expect(child.stdout).not.toContain("completed");
    const db = new Database(dbFile);
    try {
      const { syncable, mirror, states } = openKillScenario(db);
      const savedBatches = phase === "afterSave" ? killAt : killAt - 1;
      // The saved state covers exactly the confirmed batches.
      expect(mirror.count()).toBe(phase === "beforeCommit" ? savedBatches * 40 : killAt * 40);
      const r = await runSync(syncable, { ...mirror.callbacks, store: states, batchSize: 40 });
      expect(r.updated).toBe(300 - savedBatches * 40); // replays the unsaved batch: at least once
      const truth = await truthOf(syncable);
      expect(new Map(mirror.rows().map((row) => [row.sourcekey, row.data]))).toEqual(truth);
    } finally {
      db.close();
    }
  });

  it("transient errors and a StateInvalidError midway over the memory server: mirror == truth", async () => {
    const server = createMemoryServer({ pageSize: 30 });
    generateDemoServer(server, 200, 3);
    const items = server.store("alice").items;
    let fetches = 0;
    // Wrap the scope: every third round fails with a 503 before it reaches the server.
    const flaky: Syncable = {
      ...items,
      adapter: items.adapter,
      scope: items.scope,
      supportsPush: true,
      exportChanges(importer, state, options) {
        if (++fetches % 3 === 0) {
          return Promise.reject(
            new TransientError("HTTP 503 from https://user:pw@mail.example", { retryAfterMs: 0 }),
          );
        }
        return items.exportChanges(importer, state, options);
      },
    };
    const db = new Database(":memory:");
    const mirror = createSqliteMirror(db, { source: "m" });
    const store = createMemoryStateStore();
    await runSync(flaky, {
      ...mirror.callbacks,
      store,
      batchSize: 25,
      retry: { minDelayMs: 0, maxDelayMs: 0 },
    });
    const keys = server.allItems().map((i) => i.sourcekey);
    for (const k of keys.slice(0, 40)) server.updateItem(k, { subject: "edited" });
    for (const k of keys.slice(40, 60)) server.deleteItem(k);
    for (const k of keys.slice(60, 90)) server.markRead(k, true);
    let batch = 0;
    let resets = 0;
    const r = await runSync(flaky, {
      ...mirror.callbacks,
      onReset() {
        resets++;
        mirror.callbacks.onReset();
      },
      onUpdated(records) {
        mirror.callbacks.onUpdated(records);
        if (++batch === 1) server.compact(); // the saved state expires midway
      },
      store,
      batchSize: 25,
      retry: { minDelayMs: 0, maxDelayMs: 0 },
    });
    expect(resets).toBe(1);
    expect(r.reset).toBe(true);
    const truth = await truthOf(items);
    expect(new Map(mirror.rows().map((row) => [row.sourcekey, row.data]))).toEqual(truth);
  });

  it("no secret appears in any telemetry event", async () => {
    const secret = "tok_9f8e7d6c5b4a";
    registerSecret(secret);
    const events: unknown[] = [];
    const subs = Object.values(channels).map((name) => {
      const fn = (m: unknown) => events.push(m);
      diagnostics_channel.subscribe(name, fn);
      return () => diagnostics_channel.unsubscribe(name, fn);
    });
    let n = 0;
    const syncable = createSyncable({
      adapter: "secretive",
      scope: "inbox",
      source: {
        async fetchPage() {
          n++;
          if (n === 1) {
            throw new TransientError(
              `GET https://alice:hunter2pw@api.example/x?access_token=${secret} failed: 503`,
            );
          }
          if (n === 2) throw new TransientError(`Authorization: Bearer ${secret} rejected (429)`);
          if (n === 3) throw new Error(`password=hunter2pw; token ${secret}`);
          return { changes: [], newCursor: 1 };
        },
      },
    });
    try {
      await runSync(syncable, {
        onUpdated() {},
        key: "account-42",
        retry: { minDelayMs: 0, maxDelayMs: 0, retryable: () => true },
      });
      expect(events.length).toBeGreaterThanOrEqual(5);
      const text = JSON.stringify(events);
      expect(text).not.toContain(secret);
      expect(text).not.toContain("hunter2pw");
      expect(text).toContain("***");
    } finally {
      for (const s of subs) s();
    }
  });
});
