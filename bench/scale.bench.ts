/**
 * scale: the worker fleet (createWorker, the pg-boss queue, the accounts registry) against
 * baselines measured in the same run, in its own database (deltasync_bench_scale, dropped at
 * the end):
 *  1. queue overhead: one incremental round of N memory-backend accounts into the PostgreSQL
 *     mirror, through a worker (concurrency C) vs `runSync` called in a loop, and per-job
 *     overhead from per-job timings;
 *  2. I/O-bound: Google emulator accounts, +L ms per response, one worker process with
 *     concurrency 64 vs 1 (throughput ratio; the concurrency-1 leg syncs fewer accounts);
 *  3. CPU-bound: 2 worker processes vs 1 on full syncs whose importer hashes every item;
 *  4. memory per account in a worker, PostgreSQL load per job, and the accounts one process keeps
 *     in sync at a 5-minute safety poll.
 * Sizes (env): SCALE_ACCOUNTS (10000), SCALE_CONCURRENCY (16), SCALE_SERIAL_ACCOUNTS (1000),
 * SCALE_IO_ACCOUNTS (min(N, 2000)), SCALE_IO_SERIAL_ACCOUNTS (IO/20, at least 16),
 * SCALE_IO_LATENCY (20), SCALE_IO_EVENTS (5), SCALE_IO_POLLS (3, median),
 * SCALE_CPU_ACCOUNTS (min(N, 200)), SCALE_CPU_ITEMS (4000, in the worker), SCALE_CPU_ROUNDS (3),
 * SCALE_CPU_CONCURRENCY (2), SCALE_LEGS (queue,io,cpu), SCALE_PG_URL (an admin URL; default the
 * test server's).
 */
import pg from "pg";
import { createMemoryServer, type MemoryServer } from "../adapters/memory/index.js";
import { createPostgresMirror } from "../src/orchestrator/postgres-mirror.js";
import { runSync } from "../src/orchestrator/run-sync.js";
import { createAccountRegistry } from "../src/scale/accounts.js";
import { createSyncQueue } from "../src/scale/queue.js";
import { createWorker } from "../src/scale/worker.js";
import type { PgPool } from "../src/stores/postgres.js";
import {
  type Activity,
  activity,
  activityDelta,
  addMailbox,
  countingPool,
  cpuMs,
  dbNow,
  type JobTimes,
  messageFields,
  newPool,
  percentile,
  roundTrips,
  spawnWorker,
  startEmulator,
  type WorkerProcess,
  waitForJobs,
} from "./scale-shared.js";

const env = process.env;
const N = Number(env.SCALE_ACCOUNTS ?? 10_000);
const C = Number(env.SCALE_CONCURRENCY ?? 16);
const SERIAL = Math.min(N, Number(env.SCALE_SERIAL_ACCOUNTS ?? 1000));
const IO = Number(env.SCALE_IO_ACCOUNTS ?? Math.min(N, 2000));
const IO_SERIAL = Number(env.SCALE_IO_SERIAL_ACCOUNTS ?? Math.max(16, Math.round(IO / 20)));
const IO_LATENCY = Number(env.SCALE_IO_LATENCY ?? 20);
const IO_EVENTS = Number(env.SCALE_IO_EVENTS ?? 5);
const CPU = Number(env.SCALE_CPU_ACCOUNTS ?? Math.min(N, 200));
const CPU_ROUNDS = Number(env.SCALE_CPU_ROUNDS ?? 3);
const CPU_CONCURRENCY = Number(env.SCALE_CPU_CONCURRENCY ?? 2);
const POLLS = Number(env.SCALE_IO_POLLS ?? 3);
/** Which parts run: `queue`, `io`, `cpu` (the accounts-per-process summary needs the first two). */
const LEGS = new Set((env.SCALE_LEGS ?? "queue,io,cpu").split(","));
const ITEMS_PER_ACCOUNT = 10;
const WARM = 64;
const POLL_S = 300;
const ADMIN =
  env.SCALE_PG_URL ?? env.DELTASYNC_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/test";
const DB = "deltasync_bench_scale";
const URL_ = (() => {
  const u = new URL(ADMIN);
  u.pathname = `/${DB}`;
  return u.toString();
})();

const ms = (x: number) => x.toFixed(2);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
const sorted = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);
/** The run whose `value` is the median of the runs'. */
const medianBy = <T>(xs: readonly T[], value: (x: T) => number): T =>
  [...xs].sort((a, b) => value(a) - value(b))[xs.length >> 1] as T;
/** Jobs a second over a round. */
const rate = (t: JobTimes) => t.jobs / (t.wallMs / 1000);

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN });
  await c.connect();
  await c.query(sql);
  await c.end();
}

/** Runs `fn` with a pool that is closed afterwards (so its counters reach pg_stat_database). */
async function withPool<R>(max: number, fn: (pool: pg.Pool) => Promise<R>): Promise<R> {
  const pool = newPool(URL_, max);
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/**
 * The earlier legs' dead rows are vacuumed and their writes checkpointed now, not by autovacuum
 * or a checkpoint during a measured run (CHECKPOINT needs a superuser: skipped otherwise).
 */
async function settle(): Promise<void> {
  await withPool(1, async (pool) => {
    await pool.query("VACUUM ANALYZE");
    await pool.query("CHECKPOINT").catch(() => {});
  });
}

/** Runs `fn` over `items`, `width` at a time. */
async function eachParallel<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Registers accounts with one scope each; their safety polls are pushed a day away. */
async function register(accounts: { id: string; adapter: string; scope: string }[]) {
  await withPool(8, async (pool) => {
    const registry = await createAccountRegistry({ pool: pool as unknown as PgPool });
    await eachParallel(accounts, 8, (a) =>
      registry.add({ id: a.id, adapter: a.adapter, scopes: [a.scope] }),
    );
    await pool.query("UPDATE deltasync_keys SET next_poll_at = now() + interval '1 day'");
  });
}

/** Queues one job per key and waits for all of them; returns the times and the enqueue cost. */
async function round(keys: readonly string[]): Promise<JobTimes & { enqueueMs: number }> {
  return withPool(2, async (pool) => {
    const queue = await createSyncQueue({ pool: pool as unknown as PgPool });
    const since = await dbNow(pool);
    const t = performance.now();
    await queue.enqueueMany(keys);
    const enqueueMs = performance.now() - t;
    const times = await waitForJobs(URL_, since, keys.length);
    await queue.close();
    return { ...times, enqueueMs };
  });
}

/** Reads the database counters around `fn`, whose connections must all be closed when it ends. */
async function measured<R>(fn: () => Promise<R>): Promise<[R, Activity]> {
  const before = await activity(ADMIN, DB);
  const r = await fn();
  return [r, activityDelta(before, await activity(ADMIN, DB))];
}

function perJob(a: Activity, jobs: number): string {
  const f = (x: number) => (x / jobs).toFixed(1);
  return `${f(a.xact_commit)} commits, ${f(a.tup_inserted)} inserted / ${f(a.tup_updated)} updated / ${f(a.tup_deleted)} deleted rows`;
}

// 1. Queue overhead ---------------------------------------------------------------------------

/** One incremental sync of a memory account into the PostgreSQL mirror (both legs run this). */
async function syncMemory(
  server: MemoryServer,
  key: string,
  pool: PgPool,
  signal?: AbortSignal,
): Promise<void> {
  const mirror = await createPostgresMirror({ pool, source: key });
  const account = key.slice(0, key.indexOf("/"));
  await runSync(server.store(account).items, { ...mirror.syncOptions, key, signal });
}

/** Edits one message of each account, so the next round has a change to carry. */
function touch(server: MemoryServer, mailboxes: Map<string, string[]>, keys: string[], n: number) {
  for (const key of keys) {
    const item = mailboxes.get(key)?.[n % ITEMS_PER_ACCOUNT];
    if (item) server.updateItem(item, { ...messageFields(n), edit: n });
  }
}

/** The worker leg: concurrency `c`, the keys' incremental round, per-key sync times. */
async function workerRound(server: MemoryServer, keys: string[], c: number) {
  const syncMs = new Map<string, number>();
  let queueQueries = 0;
  let syncQueries = 0;
  let cpu = 0;
  const [times, load] = await measured(() =>
    withPool(c + 4, (workerPg) =>
      withPool(c + 2, async (mirrorPg) => {
        // The worker's own queries (fetch with key rows, locks and unlocks, schedule and completion, polls) are
        // counted apart from the sync's (the mirror's transaction).
        const workerPool = countingPool(workerPg);
        const mirrorPool = countingPool(mirrorPg);
        const worker = await createWorker({
          pool: workerPool.pool,
          concurrency: c,
          pollIntervalMs: 86_400_000,
          tickMs: 50,
          getCredentials: () => ({ token: "bench" }),
          async sync({ key, signal }) {
            const t = performance.now();
            await syncMemory(server, key, mirrorPool.pool, signal);
            syncMs.set(key, performance.now() - t);
          },
        });
        const startQueries = workerPool.queries();
        const cpu0 = cpuMs();
        const r = await round(keys);
        cpu = cpuMs() - cpu0;
        queueQueries = workerPool.queries() - startQueries;
        syncQueries = mirrorPool.queries();
        await worker.stop();
        return r;
      }),
    ),
  );
  const overhead = sorted(
    [...times.inWorker].map(([key, t]) => t - (syncMs.get(key) ?? Number.NaN)),
  );
  return { times, load, syncMs, overhead, queueQueries, syncQueries, cpu };
}

async function queueOverhead() {
  console.log(
    `\n### 1. Queue overhead: ${int(N)} accounts × one incremental round (memory backend, ${ITEMS_PER_ACCOUNT} items, 1 edited) into the PostgreSQL mirror\n`,
  );
  const keys = Array.from({ length: N }, (_, i) => `q${i}/items`);
  // One memory server with a mailbox per account (as one mail host serves many users).
  const server = createMemoryServer();
  const mailboxes = new Map(
    keys.map((k) => [k, addMailbox(server, k.slice(0, k.indexOf("/")), ITEMS_PER_ACCOUNT)]),
  );
  await register(
    keys.map((k) => ({ id: k.split("/")[0] as string, adapter: "memory", scope: "items" })),
  );
  // The first (full) sync of every account, not measured.
  await withPool(10, (pool) =>
    eachParallel(keys, 8, (k) => syncMemory(server, k, pool as unknown as PgPool)),
  );

  touch(server, mailboxes, keys, 1);
  const loopMs = new Map<string, number>();
  let loopQueries = 0;
  let loopCpu = 0;
  const [loopWall, loopLoad] = await measured(() =>
    withPool(2, async (pg_) => {
      const counted = countingPool(pg_);
      const cpu0 = cpuMs();
      const t0 = performance.now();
      for (const key of keys) {
        const t = performance.now();
        await syncMemory(server, key, counted.pool);
        loopMs.set(key, performance.now() - t);
      }
      loopQueries = counted.queries();
      loopCpu = cpuMs() - cpu0;
      return performance.now() - t0;
    }),
  );

  touch(server, mailboxes, keys, 2);
  const wide = await workerRound(server, keys, C);
  const serialKeys = keys.slice(0, SERIAL);
  touch(server, mailboxes, serialKeys, 3);
  const serial = await workerRound(server, serialKeys, 1);
  const serialLoopMs = serialKeys.reduce((s, k) => s + (loopMs.get(k) ?? 0), 0);

  const loopSorted = sorted(loopMs.values());
  console.log("| leg | jobs | wall | jobs/s | vs loop (throughput) | sync p50 / p95 |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  const row = (name: string, jobs: number, wall: number, base: number, syncs: number[]) =>
    console.log(
      `| ${name} | ${int(jobs)} | ${(wall / 1000).toFixed(2)} s | ${int(jobs / (wall / 1000))} | ${(base / wall).toFixed(2)}× | ${ms(percentile(syncs, 0.5))} / ${ms(percentile(syncs, 0.95))} ms |`,
    );
  row("`runSync` in a loop (baseline)", N, loopWall, loopWall, loopSorted);
  row(
    `worker, concurrency ${C}`,
    wide.times.jobs,
    wide.times.wallMs,
    loopWall,
    sorted(wide.syncMs.values()),
  );
  row(
    `worker, concurrency 1 (first ${int(SERIAL)} accounts; baseline: the loop's time for them)`,
    serial.times.jobs,
    serial.times.wallMs,
    serialLoopMs,
    sorted(serial.syncMs.values()),
  );
  console.log(
    "\nPer-job overhead = (fetch → complete, the job's `started_on` → `completed_on` on PostgreSQL's clock) − the sync's own time (measured around `sync` in the worker). Enqueue → complete is not used: all jobs are queued at once, so a job's wait in the queue is the backlog ahead of it, not overhead (reported apart).\n",
  );
  console.log("| per-job overhead | p50 | p95 | goal |");
  console.log("| --- | ---: | ---: | --- |");
  console.log(
    `| worker, concurrency ${C} (includes waiting for the event loop behind other jobs) | ${ms(percentile(wide.overhead, 0.5))} ms | ${ms(percentile(wide.overhead, 0.95))} ms | ≤ 2 ms at p50 |`,
  );
  console.log(
    `| worker, concurrency 1 (no contention: fetch with key row and lock, schedule update with completion) | ${ms(percentile(serial.overhead, 0.5))} ms | ${ms(percentile(serial.overhead, 0.95))} ms | ≤ 2 ms at p50 |`,
  );
  console.log(
    `| concurrency 1, wall difference per job ((worker wall − loop time) / jobs; adds the fetch and idle gaps) | ${ms((serial.times.wallMs - serialLoopMs) / serial.times.jobs)} ms | | |`,
  );
  console.log(
    `| enqueue, one bulk insert of ${int(N)} jobs, per job (the producer's side) | ${ms(wide.times.enqueueMs / N)} ms | | |`,
  );
  console.log(
    `| wait in the queue, concurrency ${C} (backlog, not overhead) | ${ms(percentile(wide.times.queued, 0.5))} ms | ${ms(percentile(wide.times.queued, 0.95))} ms | |`,
  );
  console.log(
    `\nCPU time of this process per job (load-independent, unlike the times above): \`runSync\` loop ${ms(loopCpu / N)} ms, worker at concurrency ${C} ${ms(wide.cpu / wide.times.jobs)} ms, at concurrency 1 ${ms(serial.cpu / serial.times.jobs)} ms.`,
  );
  console.log("\n| PostgreSQL per job | queries | pg_stat_database |");
  console.log("| --- | ---: | --- |");
  console.log(
    `| \`runSync\` loop: the sync (mirror transaction) | ${(loopQueries / N).toFixed(1)} | ${perJob(loopLoad, N)} |`,
  );
  console.log(
    `| worker, concurrency ${C}: queue and bookkeeping / the sync | ${(wide.queueQueries / N).toFixed(1)} / ${(wide.syncQueries / N).toFixed(1)} | ${perJob(wide.load, N)} |`,
  );
  return { wallMs: wide.times.wallMs, jobs: wide.times.jobs };
}

// 2. I/O-bound ---------------------------------------------------------------------------------

/** One worker process: warm-up, then a first sync and safety polls (no change) of `keys`. */
async function ioLeg(emulator: string, keys: string[], warm: string[], c: number) {
  await settle();
  const [leg, load] = await measured(async () => {
    const w: WorkerProcess = await spawnWorker("io", URL_, c, emulator);
    try {
      await round(warm);
      await round(warm);
      const before = await w.memory();
      const first = await round(keys);
      const between = await w.memory();
      // Polls are repeated (median): a round of them lasts a second or two, so one stray
      // pause (a checkpoint, a GC of another process) would move a single run's rate a lot.
      // Each starts vacuumed, as a key's polls (minutes apart) find it in production, where
      // autovacuum runs every minute: back to back, each round's updates of the job and key
      // rows leave thousands of dead versions for the next to step over (the third ran 25 %
      // slower than the first).
      const polls: JobTimes[] = [];
      for (let i = 0; i < POLLS; i++) {
        await settle();
        polls.push(await round(keys));
      }
      const poll = medianBy(polls, rate);
      return { first, poll, polls, mem: { before, between, after: await w.memory() } };
    } finally {
      await w.stop();
    }
  });
  return { ...leg, load };
}

async function ioBound() {
  console.log(
    `\n### 2. I/O-bound: Google emulator (own process), +${IO_LATENCY} ms per response, ${IO_EVENTS} events per calendar; one worker process\n`,
  );
  const total = WARM + IO + IO_SERIAL;
  const emulator = await startEmulator(total, IO_EVENTS, IO_LATENCY);
  try {
    const accounts = Array.from({ length: total }, (_, i) => ({
      id: `io${i}`,
      adapter: "google",
      scope: `cal${i}`,
    }));
    await register(accounts);
    const keys = accounts.map((a) => `${a.id}/${a.scope}`);
    const warm = keys.slice(0, WARM);
    const wide = await ioLeg(emulator.url, keys.slice(WARM, WARM + IO), warm, 64);
    const one = await ioLeg(emulator.url, keys.slice(WARM + IO), warm.slice(0, 4), 1);
    console.log("| round | concurrency 1 | concurrency 64 | ratio (throughput) | goal |");
    console.log("| --- | ---: | ---: | ---: | --- |");
    for (const [name, a, b] of [
      ["first sync (full, 1 page)", one.first, wide.first],
      [`safety poll (incremental, nothing changed; median of ${POLLS})`, one.poll, wide.poll],
    ] as const) {
      console.log(
        `| ${name} | ${int(a.jobs)} jobs, ${int(rate(a))} /s | ${int(b.jobs)} jobs, ${int(rate(b))} /s | **${(rate(b) / rate(a)).toFixed(1)}×** | ≥ 40× |`,
      );
    }
    const rates = (leg: typeof wide) => leg.polls.map((t) => int(rate(t))).join(", ");
    console.log(
      `\nEvery poll round, jobs/s: concurrency 1 ${rates(one)}; concurrency 64 ${rates(wide)}.`,
    );
    const lat = (t: JobTimes) => sorted(t.inWorker.values());
    console.log(
      `Job time in the worker (fetch → complete), safety poll: concurrency 1 p50 ${ms(percentile(lat(one.poll), 0.5))} ms, concurrency 64 p50 ${ms(percentile(lat(wide.poll), 0.5))} / p95 ${ms(percentile(lat(wide.poll), 0.95))} ms.`,
    );
    const cpuOf = (leg: typeof wide, jobs: number) => ({
      first: (leg.mem.between.cpuMs - leg.mem.before.cpuMs) / jobs,
      poll: (leg.mem.after.cpuMs - leg.mem.between.cpuMs) / (jobs * POLLS),
    });
    const cpu1 = cpuOf(one, IO_SERIAL);
    const cpu64 = cpuOf(wide, IO);
    console.log(
      `Worker CPU time per job (the process's, its GC threads included): first sync ${ms(cpu1.first)} ms at concurrency 1, ${ms(cpu64.first)} ms at 64; safety poll ${ms(cpu1.poll)} ms at 1, ${ms(cpu64.poll)} ms at 64.`,
    );
    const latency1 = percentile(lat(one.poll), 0.5);
    console.log(
      `At ${ms(cpu64.poll)} ms of CPU per poll one core completes about ${int(1000 / cpu64.poll)} polls/s: against concurrency 1 (${ms(latency1)} ms per poll) about ${(latency1 / cpu64.poll).toFixed(0)}×, whatever the concurrency (more where the GC threads run on another core, less where PostgreSQL and the emulator take that core).`,
    );
    const perAccount = (k: "rss" | "heapUsed") => (wide.mem.after[k] - wide.mem.before[k]) / IO;
    console.log(
      `\nMemory per account in the concurrency-64 worker (after a GC, before vs after the ${int(IO)} accounts' first sync and poll): heap ${int(perAccount("heapUsed"))} B, RSS ${int(perAccount("rss"))} B (worker RSS ${int(wide.mem.after.rss / 2 ** 20)} MiB). A job keeps nothing per account: the mirror, the Google client and the state are made per job.`,
    );
    const jobs = 2 * WARM + 2 * IO;
    console.log(
      `\nPostgreSQL per job, concurrency-64 process (its whole life: start-up, warm-up, ${int(jobs)} jobs, stop): ${perJob(wide.load, jobs)}.`,
    );
    return { poll: wide.poll, pollLatency: percentile(lat(wide.poll), 0.5) };
  } finally {
    emulator.stop();
  }
}

// 3. CPU-bound ---------------------------------------------------------------------------------

async function cpuLeg(processes: number, keys: string[], warm: string[]) {
  const workers = await Promise.all(
    Array.from({ length: processes }, () => spawnWorker("cpu", URL_, CPU_CONCURRENCY)),
  );
  try {
    await round(warm);
    const before = await Promise.all(workers.map((w) => w.memory()));
    const t = await round(keys);
    const reports = await Promise.all(workers.map((w) => w.memory()));
    // The processes' CPU per job and their use of the machine's cores during the round.
    const cpu = reports.reduce((sum, r, i) => sum + r.cpuMs - (before[i]?.cpuMs ?? 0), 0);
    const cpuPerJob = cpu / t.jobs;
    const cores = cpu / t.wallMs;
    const syncP50 = reports[0]?.syncP50 ?? Number.NaN;
    // Both processes must have taken a share, or the ratio measures nothing.
    const split = reports.map((r) => r.syncs).join(" / ");
    return { t, syncP50, split, cpuPerJob, cores };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

async function cpuBound() {
  console.log(
    `\n### 3. CPU-bound: full sync of a ${int(Number(env.SCALE_CPU_ITEMS ?? 4000))}-item memory server per account, importer hashing every item (sha256 of its JSON); concurrency ${CPU_CONCURRENCY} per process; ${CPU_ROUNDS} runs of each, alternating (medians)\n`,
  );
  // 1, 2, 2, 1, 1, 2…: neither count always runs first. Each run has fresh accounts and warms
  // each process up on the same number of jobs.
  const order = Array.from({ length: 2 * CPU_ROUNDS }, (_, i) => ((i + (i >> 1)) % 2) + 1);
  const warmEach = 12;
  const accounts = order.flatMap((processes, run) =>
    Array.from({ length: CPU + warmEach * processes }, (_, i) => ({
      id: `cpu${run}-${i}`,
      adapter: "memory",
      scope: "items",
    })),
  );
  await register(accounts);
  await settle();
  const legs: Record<1 | 2, Awaited<ReturnType<typeof cpuLeg>>[]> = { 1: [], 2: [] };
  let offset = 0;
  for (const processes of order) {
    const keys = accounts
      .slice(offset, offset + CPU + warmEach * processes)
      .map((a) => `${a.id}/items`);
    offset += keys.length;
    const leg = await cpuLeg(
      processes,
      keys.slice(warmEach * processes),
      keys.slice(0, warmEach * processes),
    );
    legs[processes as 1 | 2].push(leg);
  }
  const one = medianBy(legs[1], (l) => rate(l.t));
  const two = medianBy(legs[2], (l) => rate(l.t));
  console.log(
    "| worker processes | jobs (per process, warm-up included) | wall | jobs/s (all runs) | sync p50 | worker CPU per job | cores busy | ratio | goal |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  const all = (n: 1 | 2) => legs[n].map((l) => rate(l.t).toFixed(1)).join(", ");
  console.log(
    `| 1 | ${one.t.jobs} (${one.split}) | ${(one.t.wallMs / 1000).toFixed(2)} s | ${rate(one.t).toFixed(1)} (${all(1)}) | ${ms(one.syncP50)} ms | ${ms(one.cpuPerJob)} ms | ${one.cores.toFixed(2)} | 1.00× | |`,
  );
  console.log(
    `| 2 | ${two.t.jobs} (${two.split}) | ${(two.t.wallMs / 1000).toFixed(2)} s | ${rate(two.t).toFixed(1)} (${all(2)}) | ${ms(two.syncP50)} ms | ${ms(two.cpuPerJob)} ms | ${two.cores.toFixed(2)} | **${(rate(two.t) / rate(one.t)).toFixed(2)}×** | ≥ 1.8× |`,
  );
}

async function main(): Promise<void> {
  console.log(
    `accounts ${int(N)} (concurrency ${C}, serial ${int(SERIAL)}), I/O ${int(IO)} / ${int(IO_SERIAL)} at +${IO_LATENCY} ms, CPU ${int(CPU)}; database ${DB}`,
  );
  await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DB}`);
  try {
    // Schemas first (registry, mirror, state store, pg-boss), outside every measured window.
    await withPool(2, async (pool) => {
      const p = pool as unknown as PgPool;
      await createAccountRegistry({ pool: p });
      await createPostgresMirror({ pool: p, source: "setup" });
      await (await createSyncQueue({ pool: p })).close();
    });
    const rt = await roundTrips(URL_);
    console.log(
      `\nOn this server, one query round trip (SELECT 1) p50 ${ms(percentile(rt.select, 0.5))} / p95 ${ms(percentile(rt.select, 0.95))} ms; one durable commit (autocommitted insert, WAL flush) p50 ${ms(percentile(rt.commit, 0.5))} / p95 ${ms(percentile(rt.commit, 0.95))} ms. A job's bookkeeping is two statements: the fetch with the key row and lock, which also lets go of the keys of ended runs (committed asynchronously; one fetch serves several jobs under load), and the key's schedule with the completion (a durable commit).`,
    );
    const memory = LEGS.has("queue") ? await queueOverhead() : undefined;
    const io = LEGS.has("io") ? await ioBound() : undefined;
    if (LEGS.has("cpu")) await cpuBound();
    if (!memory || !io) return;
    console.log(
      `\n### 4. Accounts kept in sync per process at a ${POLL_S / 60}-minute safety poll\n`,
    );
    console.log(
      "Per-job cost at a concurrency = the round's wall time / its jobs (the jobs ran that many at a time); accounts per process = 300 s / that cost (one scope per account; a job per account per poll). The naive bound 300 s / job latency × concurrency assumes the process never saturates.\n",
    );
    console.log("| load | per-job cost | accounts per process | naive bound |");
    console.log("| --- | ---: | ---: | ---: |");
    const perJobMs = io.poll.wallMs / io.poll.jobs;
    console.log(
      `| Google, +${IO_LATENCY} ms round trip, incremental with nothing changed, concurrency 64 | ${ms(perJobMs)} ms | ${int((POLL_S * 1000) / perJobMs)} | ${int(((POLL_S * 1000) / io.pollLatency) * 64)} |`,
    );
    const memMs = memory.wallMs / memory.jobs;
    console.log(
      `| memory backend, 1 edit per account into the PostgreSQL mirror, concurrency ${C} | ${ms(memMs)} ms | ${int((POLL_S * 1000) / memMs)} | |`,
    );
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
