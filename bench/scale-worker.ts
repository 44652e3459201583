/**
 * One worker process of the scale benchmark (bench/scale.bench.ts): `createWorker` on the
 * benchmark's database, with one of two loads per job:
 *  - `io`: a sync of the Google calendar named by the key's scope (`cal<i>` on the emulator)
 *    into the PostgreSQL mirror; one undici Agent for the whole process, as a real worker has;
 *    nothing is kept per account between jobs;
 *  - `cpu`: a full sync of a memory server of SCALE_CPU_ITEMS items (built once at start-up and
 *    shared by every account) whose importer hashes every item: CPU-bound; states in a
 *    PostgreSQL state store.
 * Prints `READY <json>` once started, answers `mem` on stdin with `MEM <json>` (memory after a
 * GC, and the sync times so far); SIGTERM stops it gracefully.
 * node --import tsx --expose-gc bench/scale-worker.ts <io|cpu> <db url> <concurrency> [emulator url]
 */
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import pg from "pg";
import { createGoogleAccount } from "../adapters/google/index.js";
import { createAgent } from "../src/http/index.js";
import { createPostgresMirror } from "../src/orchestrator/postgres-mirror.js";
import { runSync } from "../src/orchestrator/run-sync.js";
import { createWorker, type SyncJob } from "../src/scale/worker.js";
import { createPostgresStateStore, type PgPool } from "../src/stores/postgres.js";
import { buildItemServer, memorySnapshot, percentile } from "./scale-shared.js";

const [mode, url, concurrencyArg, emulatorUrl] = process.argv.slice(2);
const concurrency = Number(concurrencyArg ?? 1);
const pool = new pg.Pool({ connectionString: url, max: concurrency + 4 });
pool.on("error", () => {});
const db = pool as unknown as PgPool;
const syncMs: number[] = [];

async function makeSync(): Promise<(job: SyncJob) => Promise<unknown>> {
  if (mode === "io") {
    const agent = createAgent({ connections: concurrency * 2, timeoutMs: 30_000 });
    return async ({ key, account, scope, signal }) => {
      const google = createGoogleAccount({
        baseUrl: emulatorUrl,
        accessToken: "bench",
        accountId: account.id,
        dispatcher: agent,
      });
      try {
        const mirror = await createPostgresMirror({ pool: db, source: key });
        await runSync(google.calendar(scope), { ...mirror.syncOptions, key, signal });
      } finally {
        await google.close();
      }
    };
  }
  if (mode === "cpu") {
    const items = buildItemServer(Number(process.env.SCALE_CPU_ITEMS ?? 4000)).store("alice").items;
    const store = await createPostgresStateStore({ pool: db });
    return async ({ key, signal }) => {
      await runSync(items, {
        key,
        signal,
        store,
        batchSize: 1000,
        // A transform per item (serialise and fingerprint), standing in for a real importer's work.
        onUpdated(records) {
          for (const r of records) createHash("sha256").update(JSON.stringify(r)).digest("hex");
        },
      });
    };
  }
  throw new Error(`unknown mode ${mode}: io or cpu`);
}

async function main(): Promise<void> {
  const sync = await makeSync();
  const worker = await createWorker({
    pool: db,
    concurrency,
    // The benchmark enqueues every job itself; the safety polls are pushed a day away.
    pollIntervalMs: 86_400_000,
    tickMs: 50,
    getCredentials: () => ({ token: "bench" }),
    async sync(job) {
      const t = performance.now();
      await sync(job);
      syncMs.push(performance.now() - t);
    },
  });
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.trim() !== "mem") return;
    const sorted = [...syncMs].sort((a, b) => a - b);
    const report = {
      ...memorySnapshot(),
      syncs: sorted.length,
      syncP50: percentile(sorted, 0.5),
      syncP95: percentile(sorted, 0.95),
    };
    process.stdout.write(`MEM ${JSON.stringify(report)}\n`);
  });
  process.on("SIGTERM", () => {
    void worker.stop().then(async () => {
      await pool.end();
      process.exit(0);
    });
  });
  process.stdout.write(`READY ${JSON.stringify(memorySnapshot())}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
