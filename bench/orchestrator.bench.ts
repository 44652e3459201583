/**
 * Orchestrator benchmarks (one process, one run, ratios against baselines measured here):
 *  1. orchestrated sync of N memory items (default 1M), batchSize 500, into the SQLite mirror
 *     vs a hand-written loop doing the same inserts in one transaction per 500 changes;
 *  2. checkpoint overhead: the same orchestrated sync saving each batch's state in a SQLite
 *     state store vs saving nowhere;
 *  3. watch latency from a server change to the sink (p50 / p99).
 * Each variant runs twice, interleaved; the best time counts.
 * `BENCH_ITEMS=100000 npm run bench -- orchestrator` for a quicker run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryServer, type MemoryServer } from "../adapters/memory/index.js";
import type { SyncObject } from "../src/core/types.js";
import { runSync } from "../src/orchestrator/run-sync.js";
import { createSqliteMirror } from "../src/orchestrator/sqlite-mirror.js";
import { watch } from "../src/orchestrator/watch.js";
import { createFileStateStore } from "../src/stores/file.js";
import { createMemoryStateStore } from "../src/stores/memory.js";
import { createSqliteStateStore } from "../src/stores/sqlite.js";
import type { StateStore } from "../src/stores/types.js";

const N = Number(process.env.BENCH_ITEMS ?? 1_000_000);
const BATCH = 500;
const dir = mkdtempSync(join(tmpdir(), "deltasync-bench-"));

function buildServer(n: number): MemoryServer {
  const server = createMemoryServer();
  const inbox = server.createStore("alice").createFolder({ name: "Inbox", kind: "mail" });
  for (let i = 0; i < n; i++) {
    inbox.createItem({
      subject: `message ${i}`,
      from: `user${i % 97}@example.org`,
      size: i % 9000,
    });
  }
  return server;
}

const gc = (globalThis as { gc?: () => void }).gc;
async function time(fn: () => Promise<unknown>): Promise<number> {
  gc?.();
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Watch latency: one change at a time, from the mutation to the sink callback (ms, sorted). */
async function watchLatency(): Promise<number[]> {
  const small = buildServer(1000);
  const inbox = small.store("alice").folders()[0]?.sourcekey as string;
  const folder = small.folder(inbox);
  const latencies: number[] = [];
  let pending: { key: string; at: number; done: () => void } | undefined;
  const sub = watch(folder, {
    debounceMs: 0,
    pollIntervalMs: 60_000,
    store: createMemoryStateStore(),
    onUpdated(records) {
      if (pending && records.some((r) => r.sourcekey === pending?.key)) {
        latencies.push(performance.now() - pending.at);
        pending.done();
      }
    },
  }).subscribe();
  await new Promise((r) => setTimeout(r, 100));
  const keys = small.allItems().map((i) => i.sourcekey);
  for (let i = 0; i < 300; i++) {
    const key = keys[i % keys.length] as string;
    await new Promise<void>((done) => {
      pending = { key, at: performance.now(), done };
      small.updateItem(key, { subject: `edit ${i}` });
    });
  }
  sub.unsubscribe();
  latencies.sort((a, b) => a - b);
  return latencies;
}

function percentile(latencies: number[], p: number): number {
  return latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
}

type Items = MemoryServer["items"];

/** Baseline: core sync, a hand-written buffer of 500, one transaction per batch (same inserts). */
async function handLoop(items: Items, file: string, n: number): Promise<number> {
  const mirror = createSqliteMirror(file, { source: "bench" });
  const ms = await time(async () => {
    let buffer: SyncObject[] = [];
    await items.sync({
      update(obj) {
        buffer.push(obj);
        if (buffer.length === BATCH) {
          mirror.callbacks.onUpdated(buffer);
          buffer = [];
        }
      },
    });
    mirror.callbacks.onUpdated(buffer);
  });
  if (mirror.count() !== n) throw new Error(`hand loop mirrored ${mirror.count()}`);
  mirror.close();
  return ms;
}

/** runSync into the mirror; with a SQLite state store (a checkpoint per batch) or saving nowhere. */
async function orchestrated(
  items: Items,
  file: string,
  n: number,
  stateFile?: string,
): Promise<{ ms: number; batches: number }> {
  const mirror = createSqliteMirror(file, { source: "bench" });
  const states = stateFile ? createSqliteStateStore(stateFile) : undefined;
  let batches = 0;
  const ms = await time(async () => {
    const r = await runSync(items, {
      ...mirror.callbacks,
      batchSize: BATCH,
      ...(states ? { store: states } : { saveState: () => true }),
    });
    batches = r.batches;
  });
  if (mirror.count() !== n) throw new Error(`orchestrator mirrored ${mirror.count()}`);
  mirror.close();
  await states?.close();
  return { ms, batches };
}

/** Microseconds per compare-and-set save of a realistic state, for one store. */
async function saveCost(store: StateStore, saves: number): Promise<number> {
  let previous: string | undefined;
  const t = performance.now();
  for (let i = 0; i < saves; i++) {
    const next = `ds1.${Buffer.from(JSON.stringify({ v: 1, a: "memory", s: "store:alice", c: i, p: { base: i } })).toString("base64url")}`;
    if (!(await store.compareAndSet("bench:key", previous, next))) throw new Error("lost CAS");
    previous = next;
  }
  const us = ((performance.now() - t) / saves) * 1000;
  await store.close();
  return us;
}

async function main() {
  const latency = await watchLatency();
  // Warm-up (JIT, SQLite page cache), not measured.
  const warm = buildServer(20_000).items;
  await handLoop(warm, join(dir, "w1.sqlite"), 20_000);
  await orchestrated(warm, join(dir, "w2.sqlite"), 20_000, join(dir, "w2-states.sqlite"));

  const t0 = performance.now();
  const server = buildServer(N);
  const items = server.store("alice").items;
  console.log(`built ${N} items in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  // Two interleaved rounds, best of each: the machine is shared, so single runs are noisy.
  let hand = Number.POSITIVE_INFINITY;
  let noSave = Number.POSITIVE_INFINITY;
  let orchestratedMs = Number.POSITIVE_INFINITY;
  let batches = 0;
  for (let round = 0; round < 2; round++) {
    hand = Math.min(hand, await handLoop(items, join(dir, `hand${round}.sqlite`), N));
    noSave = Math.min(
      noSave,
      (await orchestrated(items, join(dir, `nosave${round}.sqlite`), N)).ms,
    );
    const withStates = await orchestrated(
      items,
      join(dir, `orch${round}.sqlite`),
      N,
      join(dir, `states${round}.sqlite`),
    );
    orchestratedMs = Math.min(orchestratedMs, withStates.ms);
    batches = withStates.batches;
    for (const f of ["hand", "nosave", "orch", "states"]) {
      rmSync(join(dir, `${f}${round}.sqlite`), { force: true });
      rmSync(join(dir, `${f}${round}.sqlite-wal`), { force: true });
    }
  }

  const sqliteSave = await saveCost(createSqliteStateStore(join(dir, "cas.sqlite")), 2000);
  const fileSave = await saveCost(createFileStateStore(join(dir, "cas.json")), 500);

  const rate = (ms: number) => `${Math.round(N / (ms / 1000)).toLocaleString("en-US")} /s`;
  console.log(
    `| ${N.toLocaleString("en-US")} items, batchSize ${BATCH}, SQLite mirror | time | items/s | ratio |`,
  );
  console.log("| --- | ---: | ---: | ---: |");
  console.log(
    `| hand-written loop, 1 transaction per batch (baseline) | ${(hand / 1000).toFixed(2)} s | ${rate(hand)} | 1.00 |`,
  );
  console.log(
    `| runSync, state saved nowhere | ${(noSave / 1000).toFixed(2)} s | ${rate(noSave)} | ${(noSave / hand).toFixed(2)} |`,
  );
  console.log(
    `| runSync, SQLite state store checkpoint per batch | ${(orchestratedMs / 1000).toFixed(2)} s | ${rate(orchestratedMs)} | ${(orchestratedMs / hand).toFixed(2)} |`,
  );
  console.log();
  console.log("| checkpoint overhead | value |");
  console.log("| --- | ---: |");
  console.log(`| batches (= checkpoints) | ${batches} |`);
  console.log(
    `| SQLite state store, one save (WAL, synchronous=FULL) | ${sqliteSave.toFixed(0)} µs |`,
  );
  console.log(
    `| file state store, one save (temp + fsync + rename + dir fsync) | ${fileSave.toFixed(0)} µs |`,
  );
  console.log(
    `| extra time per checkpoint | ${(((orchestratedMs - noSave) / batches) * 1000).toFixed(0)} µs |`,
  );
  console.log(
    `| share of the run | ${(((orchestratedMs - noSave) / orchestratedMs) * 100).toFixed(1)} % |`,
  );
  console.log();
  console.log(
    "| watch latency, server change → sink (1,000-item folder, debounceMs 0, 300 changes, one at a time) | ms |",
  );
  console.log("| --- | ---: |");
  console.log(`| p50 | ${percentile(latency, 0.5).toFixed(2)} |`);
  console.log(`| p99 | ${percentile(latency, 0.99).toFixed(2)} |`);
  console.log(`| max | ${(latency.at(-1) ?? 0).toFixed(2)} |`);
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
