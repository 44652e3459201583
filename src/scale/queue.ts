/**
 * The sync queue on pg-boss (an optional peer dependency): one job per sync key, in a queue of
 * policy `short`, so at most one job of a key waits at any time (further requests coalesce into
 * it). pg-boss's `singleton`/`stately` policies would bound the running jobs per key too, but its
 * fetch then fails whole for every worker while the oldest queued job's key is running; the
 * worker bounds running jobs per key itself, with an advisory lock. Workers fetch and complete
 * jobs with their own SQL on pg-boss 10's job table (`fetchJobsSql`, `completeJobSql`), folded
 * into statements they make anyway; pg-boss creates the queue, inserts and maintains the jobs.
 */
import { ArgumentError } from "../core/errors.js";
import { sleep } from "../core/sleep.js";
import { openPgPool, type PgPool } from "../stores/postgres.js";

export const SYNC_QUEUE = "deltasync-sync";
export const DEFAULT_BOSS_SCHEMA = "deltasync_boss";

/**
 * SQL that fetches up to `limitParam` jobs of the sync queue as pg-boss 10's `fetch` does for a
 * queue of policy `short` (oldest first, skipping rows other workers are fetching; `started_on`
 * set, a retry counted) and returns each one's `id` and `key`, for a worker to read the keys'
 * rows and take their locks in the same statement.
 */
export function fetchJobsSql(schema: string, limitParam: string): string {
  return `WITH next AS (
      SELECT id FROM ${schema}.job
      WHERE name = '${SYNC_QUEUE}' AND state < 'active' AND start_after < now()
      ORDER BY priority DESC, created_on, id LIMIT ${limitParam} FOR UPDATE SKIP LOCKED
    )
    UPDATE ${schema}.job j SET state = 'active', started_on = now(),
      retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
    FROM next WHERE j.name = '${SYNC_QUEUE}' AND j.id = next.id
    RETURNING j.id, j.data->>'key' AS key`;
}

/**
 * SQL that completes one active job of the sync queue as pg-boss 10's `complete` does (state
 * `completed`, `completed_on`, no output), for a worker to fold the completion into a statement
 * it makes anyway. `idParam` is the job id's placeholder, e.g. `$3`. pg-boss has checked the
 * schema name (letters, digits, underscores) and writes it unquoted too.
 */
export function completeJobSql(schema: string, idParam: string): string {
  return `UPDATE ${schema}.job SET completed_on = now(), state = 'completed', output = NULL
    WHERE name = '${SYNC_QUEUE}' AND id = ${idParam}::uuid AND state = 'active'`;
}

/** The pg-boss schema version `fetchJobsSql` and `completeJobSql` are written for (pg-boss 10). */
export const PG_BOSS_SCHEMA_VERSION = 24;

/**
 * The worker reads and writes pg-boss's job table itself: a pg-boss whose tables differ from
 * the ones that SQL was written for must stop the worker with a clear error, never misfetch.
 */
export async function checkSchemaVersion(pool: PgPool, schema: string): Promise<void> {
  const r = await pool.query(`SELECT version FROM ${schema}.version`);
  const version = Number(r.rows[0]?.version);
  if (version !== PG_BOSS_SCHEMA_VERSION) {
    throw new ArgumentError(
      `the sync queue's pg-boss schema ${schema} is at version ${version}; deltasync's workers need version ${PG_BOSS_SCHEMA_VERSION} (pg-boss 10): npm i pg-boss@10`,
    );
  }
}

/** The index `fetchJobsSql` reads the oldest queued jobs from, one per pg-boss schema. */
export const FETCH_INDEX = "deltasync_fetch";

/**
 * pg-boss 10 indexes queued jobs by `(name, start_after)` only, so each fetch sorted every queued
 * job by `priority DESC, created_on, id`: ~14 ms a fetch with 10,000 jobs queued. An index in
 * that order on the sync queue's partition lets a fetch read the first rows (~0.1 ms).
 */
export async function ensureFetchIndex(pool: PgPool, schema: string): Promise<void> {
  const found = await pool.query(
    "SELECT partition_name, to_regclass($2) IS NOT NULL AS indexed FROM " +
      `${schema}.queue WHERE name = $1`,
    [SYNC_QUEUE, `${schema}.${FETCH_INDEX}`],
  );
  const row = found.rows[0] as { partition_name?: string; indexed?: boolean } | undefined;
  if (!row?.partition_name || row.indexed) return;
  try {
    await pool.query(
      `CREATE INDEX IF NOT EXISTS ${FETCH_INDEX} ON ${schema}.${row.partition_name} ` +
        "(priority DESC, created_on, id) WHERE state < 'active'",
    );
  } catch (error) {
    // Workers starting together race on it (a duplicate in pg_class before the winner commits):
    // the index is there, or will be once the winner commits.
    const code = (error as { code?: unknown }).code;
    if (code !== "23505" && code !== "42P07") throw error;
  }
}

/** The part of a pg-boss instance the worker uses. */
export interface BossLike {
  start(): Promise<unknown>;
  stop(options?: {
    graceful?: boolean;
    close?: boolean;
    wait?: boolean;
    timeout?: number;
  }): Promise<void>;
  getQueue(name: string): Promise<unknown>;
  createQueue(name: string, options: Record<string, unknown>): Promise<void>;
  send(name: string, data: object, options: Record<string, unknown>): Promise<string | null>;
  insert(jobs: Record<string, unknown>[]): Promise<unknown>;
  complete(name: string, id: string): Promise<unknown>;
  fail(name: string, id: string, data?: object): Promise<unknown>;
  on(event: "error", listener: (error: Error) => void): unknown;
}

export interface SyncQueue {
  /** Queues a sync of `key` after `debounceMs` (unless one is queued already). */
  enqueue(key: string, options?: { debounceMs?: number }): Promise<void>;
  enqueueMany(keys: readonly string[]): Promise<void>;
  readonly boss: BossLike;
  close(): Promise<void>;
}

export interface SyncQueueOptions {
  connectionString?: string;
  pool?: PgPool;
  /** The pg-boss schema. Default `deltasync_boss`. */
  schema?: string | undefined;
}

/**
 * Opens the sync queue to request syncs from a node that runs no worker (e.g. a webhook
 * receiver): `await queue.enqueue("alice/calendar")`.
 */
export async function createSyncQueue(options: SyncQueueOptions): Promise<SyncQueue> {
  const pool =
    options.pool ??
    (options.connectionString
      ? await openPgPool(options.connectionString, 2)
      : (() => {
          throw new ArgumentError("createSyncQueue needs a connectionString or a pool");
        })());
  const queue = await openQueue(pool, { schema: options.schema, supervise: false });
  if (options.pool) return queue;
  return {
    ...queue,
    async close() {
      await queue.close();
      await pool.end?.();
    },
  };
}

/** Requests a sync of one key through a queue opened with `createSyncQueue` (or a worker's). */
export async function enqueueSync(
  queue: SyncQueue,
  key: string,
  options?: { debounceMs?: number },
): Promise<void> {
  await queue.enqueue(key, options);
}

export async function openQueue(
  pool: PgPool,
  o: {
    schema?: string | undefined;
    expireInSeconds?: number | undefined;
    maintenanceIntervalSeconds?: number | undefined;
    supervise: boolean;
  },
): Promise<SyncQueue> {
  let mod: unknown;
  try {
    mod = await import("pg-boss");
  } catch (cause) {
    throw new ArgumentError("the sync queue needs the `pg-boss` package: npm i pg-boss@10", {
      cause,
    });
  }
  const PgBoss = ((mod as { default?: unknown }).default ?? mod) as new (
    options: Record<string, unknown>,
  ) => BossLike;
  const makeBoss = () => {
    const made = new PgBoss({
      db: { executeSql: (text: string, values: unknown[]) => pool.query(text, values) },
      schema: o.schema ?? DEFAULT_BOSS_SCHEMA,
      supervise: o.supervise,
      schedule: false,
      maintenanceIntervalSeconds: o.maintenanceIntervalSeconds ?? 60,
    });
    made.on("error", () => {
      // Maintenance errors (a lost connection) are retried by pg-boss on its next interval.
    });
    return made;
  };
  let boss = makeBoss();
  for (let attempt = 1; ; attempt++) {
    try {
      await boss.start();
      break;
    } catch (error) {
      // pg-boss 10 creates its schema without IF NOT EXISTS, so processes starting together on
      // a fresh database race on it (23505 / 42P06 / 42P07): the loser starts again, with a new
      // instance (a failed one stays "starting"), and finds the schema installed.
      const code = (error as { code?: unknown }).code;
      if (attempt >= 3 || !(code === "23505" || code === "42P06" || code === "42P07")) throw error;
      boss = makeBoss();
    }
  }
  await checkSchemaVersion(pool, o.schema ?? DEFAULT_BOSS_SCHEMA);
  for (let attempt = 1; !(await boss.getQueue(SYNC_QUEUE)); attempt++) {
    try {
      await boss.createQueue(SYNC_QUEUE, {
        policy: "short",
        retryLimit: 5,
        retryDelay: 1,
        expireInSeconds: o.expireInSeconds ?? 900,
      });
    } catch (error) {
      // Processes creating it together collide: a deadlock (40P01) or a duplicate (23505) while
      // the winner has not committed yet. Look again; the queue is there once it has.
      const code = (error as { code?: unknown }).code;
      if (attempt >= 5 || !(code === "40P01" || code === "23505" || code === "42P07")) {
        if (await boss.getQueue(SYNC_QUEUE)) break;
        throw error;
      }
      await sleep(50 * attempt);
    }
  }
  await ensureFetchIndex(pool, o.schema ?? DEFAULT_BOSS_SCHEMA);
  const job = (key: string, debounceMs: number) => ({
    name: SYNC_QUEUE,
    data: { key },
    singletonKey: key,
    ...(debounceMs > 0 ? { startAfter: new Date(Date.now() + debounceMs).toISOString() } : {}),
  });
  return {
    boss,
    async enqueue(key, options) {
      await boss.insert([job(key, options?.debounceMs ?? 0)]);
    },
    async enqueueMany(keys) {
      if (keys.length > 0) await boss.insert(keys.map((k) => job(k, 0)));
    },
    async close() {
      await boss.stop({ graceful: false, close: false, wait: true });
    },
  };
}
