/**
 * Helpers of the scale benchmark (bench/scale.bench.ts) and its worker processes
 * (bench/scale-worker.ts): test data, memory snapshots, query counting, PostgreSQL activity
 * counters and the pg-boss job table's timings.
 */
import pg from "pg";
import { createMemoryServer, type MemoryServer } from "../adapters/memory/index.js";
import { SYNC_QUEUE } from "../src/scale/queue.js";
import type { PgClient, PgPool } from "../src/stores/postgres.js";
import { lineFrom, spawnScript, startEmulatorProcess } from "./emulator-process.js";

const gc = (globalThis as { gc?: () => void }).gc;

/** A message's fields, of a realistic size (~300 bytes). */
export function messageFields(i: number): Record<string, unknown> {
  return {
    subject: `Quarterly report ${i}: figures and next steps`,
    from: `user${i % 97}@example.org`,
    to: ["alice@example.org"],
    size: 2048 + (i % 9000),
    snippet: `Hello Alice, please find the numbers for week ${i % 52} attached. `.repeat(3),
  };
}

/** Adds a mailbox (store `name`, one Inbox of `n` messages); returns the messages' keys. */
export function addMailbox(server: MemoryServer, name: string, n: number): string[] {
  const inbox = server.createStore(name).createFolder({ name: "Inbox", kind: "mail" });
  return Array.from({ length: n }, (_, i) => inbox.createItem(messageFields(i)));
}

/** A memory server with one mailbox, `alice`, of `n` messages. */
export function buildItemServer(n: number): MemoryServer {
  const server = createMemoryServer();
  addMailbox(server, "alice", n);
  return server;
}

/** Heap and RSS in bytes after a full GC (with --expose-gc), and the process's CPU time so far. */
export function memorySnapshot(): { rss: number; heapUsed: number; cpuMs: number } {
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, cpuMs: cpuMs() };
}

/** User + system CPU time of this process (ms). */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The p-quantile of an ascending list (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

/** Wraps a `pg` pool so every query through it (and its checked-out clients) is counted. */
export function countingPool(pool: pg.Pool): { pool: PgPool; queries(): number } {
  let n = 0;
  const counted: PgPool = {
    query(text, values) {
      n++;
      return pool.query(text, values);
    },
    async connect(): Promise<PgClient> {
      const client = await pool.connect();
      return {
        query(text, values) {
          n++;
          return client.query(text, values);
        },
        release: (error) => client.release(error),
      };
    },
    end: () => pool.end(),
  };
  return { pool: counted, queries: () => n };
}

export function newPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on("error", () => {});
  return pool;
}

const ACTIVITY = [
  "xact_commit",
  "xact_rollback",
  "tup_inserted",
  "tup_updated",
  "tup_deleted",
] as const;
export type Activity = Record<(typeof ACTIVITY)[number], number>;

/**
 * The database's counters from pg_stat_database, read from the admin database so reading them
 * adds nothing. PostgreSQL flushes a connection's counters lazily (up to seconds later) but
 * always when it closes: each measured window closes its connections before reading.
 */
export async function activity(adminUrl: string, database: string): Promise<Activity> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await new Promise((r) => setTimeout(r, 300));
    const r = await c.query(
      `SELECT ${ACTIVITY.join(", ")} FROM pg_stat_database WHERE datname = $1`,
      [database],
    );
    const row = r.rows[0] ?? {};
    return Object.fromEntries(ACTIVITY.map((k) => [k, Number(row[k] ?? 0)])) as Activity;
  } finally {
    await c.end();
  }
}

export function activityDelta(before: Activity, after: Activity): Activity {
  return Object.fromEntries(ACTIVITY.map((k) => [k, after[k] - before[k]])) as Activity;
}

/** pg-boss's clock-based times of the jobs created since `since` (all must have completed). */
export interface JobTimes {
  jobs: number;
  /** First job created → last job completed (ms). */
  wallMs: number;
  /** Per key: fetched (pg-boss `started_on`) → completed (ms). */
  inWorker: Map<string, number>;
  /** Created → fetched (ms), ascending: time spent waiting in the queue. */
  queued: number[];
}

/**
 * Waits until `count` jobs created since `since` have completed (on its own connection, closed
 * before returning, so its polls land in the window they belong to), then reads their times.
 * Throws if one failed for good, or if nothing moved for two minutes.
 */
export async function waitForJobs(url: string, since: string, count: number): Promise<JobTimes> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    let last = -1;
    let movedAt = Date.now();
    for (;;) {
      const r = await c.query(
        `SELECT count(*) FILTER (WHERE state = 'completed')::int AS done,
            count(*) FILTER (WHERE state = 'failed')::int AS failed
          FROM deltasync_boss.job WHERE name = $1 AND created_on >= $2`,
        [SYNC_QUEUE, since],
      );
      const { done, failed } = r.rows[0] as { done: number; failed: number };
      if (failed > 0) throw new Error(`${failed} sync jobs failed`);
      if (done >= count) break;
      if (done !== last) [last, movedAt] = [done, Date.now()];
      if (Date.now() - movedAt > 120_000) throw new Error(`stuck at ${done} of ${count} jobs`);
      // Times come from the job table, so the poll interval does not limit their precision.
      await new Promise((r) => setTimeout(r, 200));
    }
    const rows = await c.query(
      `SELECT data->>'key' AS key,
          extract(epoch FROM completed_on - started_on) * 1000 AS in_worker,
          extract(epoch FROM started_on - created_on) * 1000 AS queued,
          extract(epoch FROM max(completed_on) OVER () - min(created_on) OVER ()) * 1000 AS wall
        FROM deltasync_boss.job WHERE name = $1 AND created_on >= $2 AND state = 'completed'`,
      [SYNC_QUEUE, since],
    );
    return {
      jobs: rows.rows.length,
      wallMs: Number(rows.rows[0]?.wall ?? 0),
      inWorker: new Map(rows.rows.map((r) => [String(r.key), Number(r.in_worker)])),
      queued: rows.rows.map((r) => Number(r.queued)).sort((a, b) => a - b),
    };
  } finally {
    await c.end();
  }
}

/** PostgreSQL's clock now (job times are compared with it). */
export async function dbNow(pool: pg.Pool): Promise<string> {
  return String((await pool.query("SELECT clock_timestamp()::text AS t")).rows[0]?.t);
}

/** A child process that prints `<marker> …` lines; resolves with the first one's rest. */

export interface WorkerProcess {
  ready: { rss: number; heapUsed: number; cpuMs: number };
  /** Memory after a GC, and the sync times the process measured so far. */
  memory(): Promise<{
    rss: number;
    heapUsed: number;
    cpuMs: number;
    syncs: number;
    syncP50: number;
    syncP95: number;
  }>;
  /** SIGTERM, then waits for the graceful exit. */
  stop(): Promise<void>;
}

/** Starts bench/scale-worker.ts in its own process. */
export async function spawnWorker(
  mode: "io" | "cpu",
  url: string,
  concurrency: number,
  emulatorUrl = "",
): Promise<WorkerProcess> {
  const child = spawnScript(
    "bench/scale-worker.ts",
    [mode, url, String(concurrency), emulatorUrl],
    // SCALE_WORKER_PROFILE=<dir>: a V8 CPU profile of each worker process (bench/profile-summary.ts).
    // SCALE_WORKER_FLAGS: more Node flags for the workers (e.g. --single-threaded-gc).
    [
      "--expose-gc",
      ...(process.env.SCALE_WORKER_FLAGS?.split(" ").filter(Boolean) ?? []),
      ...(process.env.SCALE_WORKER_PROFILE
        ? ["--cpu-prof", `--cpu-prof-dir=${process.env.SCALE_WORKER_PROFILE}`]
        : []),
    ],
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const ready = JSON.parse(await lineFrom(child, "READY"));
  return {
    ready,
    async memory() {
      const answer = lineFrom(child, "MEM");
      child.stdin?.write("mem\n");
      return JSON.parse(await answer);
    },
    async stop() {
      child.kill("SIGTERM");
      const code = await exited;
      if (code !== 0) throw new Error(`worker exited with ${code}`);
    },
  };
}

/** The Google emulator in its own process, with calendars `cal0` … and `latency` per response. */
export async function startEmulator(
  calendars: number,
  eventsPerCalendar: number,
  latency: number,
): Promise<{ url: string; stop(): void }> {
  return startEmulatorProcess("test/google/emulator-main.ts", [
    "--events",
    "0",
    "--calendars",
    String(calendars),
    "--calendar-events",
    String(eventsPerCalendar),
    "--latency",
    String(latency),
  ]);
}

/**
 * Round-trip times (ms, ascending) of a trivial query and of a durable commit (an autocommitted
 * insert: a WAL flush). A job's bookkeeping is a handful of each, so they set its overhead.
 */
export async function roundTrips(
  url: string,
  n = 200,
): Promise<{ select: number[]; commit: number[] }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const timed = async (text: string, values: unknown[] = []) => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await c.query(text, values);
      times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b);
  };
  try {
    await c.query("CREATE TABLE IF NOT EXISTS bench_commit (n INTEGER)");
    const select = await timed("SELECT 1");
    const commit = await timed("INSERT INTO bench_commit VALUES (1)");
    await c.query("DROP TABLE bench_commit");
    return { select, commit };
  } finally {
    await c.end();
  }
}
