/**
 * A sync worker: takes sync jobs (one per `<account>/<scope>` key) from a pg-boss queue in
 * PostgreSQL and runs them, `concurrency` at a time, never two of one key at once across every
 * process, at most `perAccount` of one account at once in this process. It also schedules the
 * safety polls of every key (spread with jitter, backed off after failures), parks a key whose
 * failure is permanent (an `AuthError`), and on `stop()` lets running jobs finish their batch,
 * save their state and hand their key back to the queue.
 */
import { AuthError } from "../core/errors.js";
import { sleep } from "../core/sleep.js";
import { describeError } from "../orchestrator/redact.js";
import { openPgPool, type PgClient, type PgPool, pgError } from "../stores/postgres.js";
import { queryPrepared } from "../stores/prepared.js";
import { type AccountRecord, accountOf, createAccountRegistry } from "./accounts.js";
import { keyLockSql, UNLOCK_KEYS_SQL } from "./locks.js";
import {
  type BossLike,
  completeJobSql,
  DEFAULT_BOSS_SCHEMA,
  fetchJobsSql,
  openQueue,
  SYNC_QUEUE,
  type SyncQueue,
} from "./queue.js";
import { createWatchers, type WatchAccount } from "./watchers.js";

/** What `sync` is given for one job. */
export interface SyncJob {
  key: string;
  account: AccountRecord;
  scope: string;
  /** What `getCredentials(account.id)` resolved with. */
  credentials: unknown;
  /** Aborted when the worker stops: pass it to `runSync`, which then ends after its batch. */
  signal: AbortSignal;
}

export interface WorkerOptions {
  /**
   * A connection string, or your `pg` pool (`pool`; not closed by `stop()`; its `query` must take
   * `pg`'s `{ name, text, values }`: the per-job statements are prepared once per connection).
   */
  connectionString?: string;
  pool?: PgPool;
  /**
   * Jobs at once in this process. Default 8. Under load, slots that free up are refilled by one
   * fetch once an eighth of them are free (or at the next tick), not by a fetch per ended job.
   */
  concurrency?: number;
  /** Jobs of one account at once in this process (its rate limits are shared). Default 1. */
  perAccount?: number;
  /** The account's credentials, asked for at every job; the library never stores them. */
  getCredentials(accountId: string): unknown;
  /** Runs one sync of a key, typically `runSync(…, { signal, …mirror.syncOptions })`. */
  sync(job: SyncJob): Promise<unknown>;
  /** Safety-poll interval of every key (ms). Default 300 000. */
  pollIntervalMs?: number;
  /** Spread of each poll interval, ± this fraction. Default 0.2. */
  jitter?: number;
  /** Backoff after failures in a row: `minMs * 2^(failures-1)`, at most `maxMs`. Default 5 s .. 1 h. */
  backoff?: { minMs?: number; maxMs?: number };
  /** Failures that park the key instead of backing off. Default: `AuthError`. */
  isPermanent?(error: unknown): boolean;
  /** How often to look for due polls and, when idle, for jobs (ms). Default 1000. */
  tickMs?: number;
  /** A job running longer than this is given to another worker (pg-boss expiry). Default 900. */
  expireInSeconds?: number;
  /** pg-boss maintenance (expiry) interval. Default 60. */
  maintenanceIntervalSeconds?: number;
  /** Debounce of `notify` (ms). Default 1000. */
  debounceMs?: number;
  /** The pg-boss schema. Default `deltasync_boss`. */
  schema?: string;
  /**
   * Runs one account's push connection (IMAP IDLE, …) until its signal aborts, calling
   * `notify(scope)` on changes. Called for the accounts whose `push` has `watch: true`, each by
   * one worker of the fleet at a time; when that worker dies, another takes the account over.
   */
  watch?: WatchAccount;
  /** Accounts this worker watches at most. Default 100. */
  maxWatches?: number;
  /** Told of failures the worker survives (an unreachable database, a failed job's bookkeeping). */
  onError?(error: unknown, during: "fetch" | "poll" | "job" | "watch"): void;
}

export interface Worker {
  /** Requests a sync of `key` soon (debounced; coalesced with a queued one). */
  notify(key: string, options?: { debounceMs?: number }): Promise<void>;
  /** Jobs running now. */
  readonly running: number;
  /** Accounts this worker watches now (see `watch`). */
  readonly watching: number;
  /** Finishes running batches, saves their states, hands their keys back; safe twice. */
  stop(): Promise<void>;
}

/**
 * Starts a worker.
 * @example
 * const worker = await createWorker({
 *   connectionString: process.env.DATABASE_URL,
 *   concurrency: 16,
 *   getCredentials: (id) => vault.read(id),
 *   sync: async ({ account, scope, credentials, signal }) => {
 *     const mirror = await createPostgresMirror({ pool, source: `${account.id}/${scope}` });
 *     await runSync(open(account, scope, credentials), { ...mirror.syncOptions, key: mirror.source, signal });
 *   },
 * });
 * process.on("SIGTERM", () => worker.stop());
 */
export async function createWorker(options: WorkerOptions): Promise<Worker> {
  const concurrency = options.concurrency ?? 8;
  const perAccount = options.perAccount ?? 1;
  const pollMs = options.pollIntervalMs ?? 300_000;
  const jitter = options.jitter ?? 0.2;
  const minBackoff = options.backoff?.minMs ?? 5_000;
  const maxBackoff = options.backoff?.maxMs ?? 3_600_000;
  const tickMs = options.tickMs ?? 1000;
  const isPermanent = options.isPermanent ?? ((e: unknown) => e instanceof AuthError);
  const owned = options.pool === undefined;
  const pool =
    options.pool ??
    (await openPgPool(options.connectionString ?? "", Math.max(4, concurrency + 2)));
  await createAccountRegistry({ pool });
  const queue = await openQueue(pool, {
    schema: options.schema,
    expireInSeconds: options.expireInSeconds,
    maintenanceIntervalSeconds: options.maintenanceIntervalSeconds,
    supervise: true,
  });
  const boss: BossLike = queue.boss;
  // Advisory locks on one session: held while a key runs, released by PostgreSQL if we die.
  const session: PgClient = await pool.connect();
  // The fetches run on this session too, committed without waiting for the WAL flush: a fetch
  // lost in a PostgreSQL crash leaves its job queued, to be fetched again, and the crash ends
  // this session and its locks anyway. The session does no other writes. Reset before release.
  try {
    await session.query("SET synchronous_commit = off");
  } catch (cause) {
    session.release(true);
    throw pgError("sync worker", cause);
  }
  // One query at a time on the session (pg queues them, but deprecates doing so).
  let chain: Promise<unknown> = Promise.resolve();
  const lease = {
    query(text: string, values: unknown[]) {
      const next = chain.then(() => queryPrepared(session, text, values));
      chain = next.catch(() => {});
      return next;
    },
  };
  const query = async (text: string, values?: unknown[]) => {
    try {
      return await pool.query(text, values);
    } catch (cause) {
      throw pgError("sync worker", cause);
    }
  };
  /** `query` as a named statement: for the statements every job or tick makes. */
  const queryNamed = async (text: string, values: unknown[]) => {
    try {
      return await queryPrepared(pool, text, values);
    } catch (cause) {
      throw pgError("sync worker", cause);
    }
  };

  let stopping = false;
  const running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  const gates = new Map<string, { active: number; waiters: (() => void)[] }>();
  /** Keys with a run in this process (holding their advisory lock). */
  const runningKeys = new Set<string>();
  /** Keys whose run here has ended, still locked until the next fetch lets go of them. */
  const held = new Set<string>();
  /** Unlocks `keys` on their own (a key not held any more is only warned about). */
  const letGo = (keys: string[]) => lease.query(UNLOCK_KEYS_SQL, [keys]).catch(() => {});
  let wake: (() => void) | undefined;
  const nudge = () => wake?.();
  const watchers = options.watch
    ? createWatchers({
        watch: options.watch,
        maxWatches: options.maxWatches ?? 100,
        retryMs: minBackoff,
        getCredentials: options.getCredentials,
        lease: (text, values) => lease.query(text, values),
        query,
        enqueue: (key, debounceMs) => queue.enqueue(key, { debounceMs }),
        debounceMs: options.debounceMs ?? 1000,
        onError: (error) => options.onError?.(error, "watch"),
      })
    : undefined;
  (session as unknown as NodeJS.EventEmitter).on?.("error", () => {
    // Without the session our locks are gone: stop every run and watch before another worker
    // starts it.
    for (const r of running.values()) r.controller.abort(new Error("lock session lost"));
    held.clear();
    watchers?.lost();
  });

  const acquire = async (account: string) => {
    let g = gates.get(account);
    if (!g) gates.set(account, (g = { active: 0, waiters: [] }));
    while (g.active >= perAccount) await new Promise<void>((r) => g?.waiters.push(r));
    g.active++;
  };
  const release = (account: string) => {
    const g = gates.get(account);
    if (!g) return;
    g.active--;
    const next = g.waiters.shift();
    if (next) next();
    else if (g.active === 0) gates.delete(account);
  };
  const spread = (ms: number) => Math.round(ms * (1 - jitter + 2 * jitter * Math.random()));

  const bossSchema = options.schema ?? DEFAULT_BOSS_SCHEMA;
  // Each way a run ends writes the key's row and completes its job in one statement ($3: the job
  // id): one round trip instead of two, and the completion commits with the bookkeeping.
  const finishOk = `WITH completed AS (${completeJobSql(bossSchema, "$3")})
    UPDATE deltasync_keys SET failures = 0, last_error = NULL, last_ok_at = now(),
      next_poll_at = now() + $2::float8 * interval '1 millisecond' WHERE key = $1`;
  const finishParked = `WITH completed AS (${completeJobSql(bossSchema, "$3")})
    UPDATE deltasync_keys SET parked_reason = $2, last_error = $2, failures = failures + 1 WHERE key = $1`;
  const finishFailed = `WITH completed AS (${completeJobSql(bossSchema, "$6")})
    UPDATE deltasync_keys SET failures = failures + 1, last_error = $2,
      next_poll_at = now() + least($4::float8, $3::float8 * power(2, failures)) * $5::float8 * interval '1 millisecond'
    WHERE key = $1`;
  // One round trip per fetch on the lock session: the jobs, their keys' rows (none for a removed
  // account or a parked key) and their locks. A lock is tried only for a key whose row is there,
  // once per key in a batch, and not for a key running here ($2): session locks are re-entrant,
  // so a key locked twice would stay locked after its unlock. The same statement lets go of the
  // keys whose runs ended since the last fetch ($3, still locked: one round trip fewer per job),
  // except those it fetches again: a fetched key of $3 runs under the lock it still holds (CASE,
  // unlike OR, never evaluates the try-lock then). `released` is a one-row aggregate the jobs are
  // joined to, so it runs even when no job is fetched. Nothing can fail after a lock is taken but
  // the commit, and a commit fails only with the session, which takes its locks with it.
  const fetchSql = `WITH fetched AS (${fetchJobsSql(bossSchema, "$1")}),
    released AS (
      SELECT count(pg_advisory_unlock(${keyLockSql("k")})) AS n FROM unnest($3::text[]) AS k
      WHERE NOT EXISTS (SELECT 1 FROM fetched f WHERE f.key = k)
    )
    SELECT s.*, CASE WHEN s.scope IS NOT NULL AND s.first AND NOT (s.key = ANY($2::text[]))
        THEN CASE WHEN s.key = ANY($3::text[]) THEN true
          ELSE pg_try_advisory_lock(${keyLockSql("s.key")}) END END AS ok
      FROM released LEFT JOIN (
        SELECT f.id, f.key, k.scope, a.id AS account_id, a.adapter, a.scopes, a.push, a.created_at,
          row_number() OVER (PARTITION BY f.key ORDER BY f.id) = 1 AS first
        FROM fetched f
        LEFT JOIN deltasync_keys k ON k.key = f.key AND k.parked_reason IS NULL
        LEFT JOIN deltasync_accounts a ON a.id = k.account
      ) s ON true`;

  /** Runs one fetched job to its end, its completion included; throws if its bookkeeping failed. */
  const runJob = async (
    row: Record<string, unknown>,
    locked: boolean,
    controller: AbortController,
  ) => {
    const key = String(row.key ?? "");
    const jobId = String(row.id);
    try {
      // A removed account or a parked key: the job has nothing to do.
      if (row.scope === null) {
        await boss.complete(SYNC_QUEUE, jobId);
        return;
      }
      if (!locked) {
        // Running elsewhere: one follow-up after it (coalesced with any queued one).
        await queue.enqueue(key, { debounceMs: tickMs });
        await boss.complete(SYNC_QUEUE, jobId);
        return;
      }
      const account = accountOf({ ...row, id: row.account_id });
      await acquire(account.id);
      try {
        let failure: { error: unknown } | undefined;
        try {
          if (controller.signal.aborted) throw controller.signal.reason;
          const credentials = await options.getCredentials(account.id);
          await options.sync({
            key,
            account,
            scope: String(row.scope),
            credentials,
            signal: controller.signal,
          });
        } catch (error) {
          failure = { error };
        }
        if (!failure) {
          await queryNamed(finishOk, [key, spread(pollMs), jobId]);
        } else if (controller.signal.aborted) {
          // Stopped mid-run: the state is at the last saved batch; another worker goes on.
          await queue.enqueue(key, { debounceMs: 0 });
          await boss.complete(SYNC_QUEUE, jobId);
        } else if (isPermanent(failure.error)) {
          await queryNamed(finishParked, [key, describeError(failure.error), jobId]);
        } else {
          await queryNamed(finishFailed, [
            key,
            describeError(failure.error),
            minBackoff,
            maxBackoff,
            1 - jitter + 2 * jitter * Math.random(),
            jobId,
          ]);
        }
      } finally {
        release(account.id);
      }
    } finally {
      if (locked) {
        // Unlocked by the next fetch (or by stop()), which may also run the key again.
        runningKeys.delete(key);
        held.add(key);
      }
    }
  };

  const start = (row: Record<string, unknown>) => {
    const jobId = String(row.id);
    const locked = row.ok === true;
    // Synchronously, before the next fetch is sent: it must not lock this key again.
    if (locked) {
      held.delete(String(row.key));
      runningKeys.add(String(row.key));
    }
    const controller = new AbortController();
    const done = runJob(row, locked, controller)
      .catch((error: unknown) => {
        // A bookkeeping failure (the database went away): pg-boss retries the job.
        options.onError?.(error, "job");
        return boss.fail(SYNC_QUEUE, jobId, { message: describeError(error) });
      })
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        running.delete(jobId);
        nudge();
      });
    running.set(jobId, { controller, done });
  };

  // Under load, a fetch for every job that ends would be most of PostgreSQL's work per job: a
  // freed slot waits until an eighth of the slots are free, or for the next tick.
  const batch = Math.max(1, Math.floor(concurrency / 8));
  const fetchLoop = (async () => {
    let ticked = true;
    while (!stopping) {
      const free = concurrency - running.size;
      let fetched = 0;
      if (free >= batch || (free > 0 && ticked)) {
        const releasing = [...held];
        try {
          const jobs = await lease.query(fetchSql, [free, [...runningKeys], releasing]);
          const rows = jobs.rows.filter((row) => row.id !== null && row.id !== undefined);
          fetched = rows.length;
          const again = new Set(rows.map((row) => String(row.key)));
          // Unlocked by the fetch: the keys it did not fetch again (a fetched one is held still,
          // and runs now or waits for the next fetch to let go of it).
          for (const key of releasing) if (!again.has(key)) held.delete(key);
          for (const row of rows) start(row);
        } catch (error) {
          // The database is unreachable: try again on the next tick. Whether the fetch let go of
          // the ended runs' keys is unknown, so they are unlocked on their own (a key not held any
          // more is only warned about); none of them is taken to be held again.
          for (const key of releasing) held.delete(key);
          if (releasing.length > 0) void letGo(releasing);
          options.onError?.(error, "fetch");
        }
      }
      if (fetched === 0 || concurrency - running.size < batch) {
        ticked = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), tickMs);
          wake = () => {
            clearTimeout(timer);
            resolve(false);
          };
        });
        wake = undefined;
      }
    }
  })();

  // Safety polls: claim due keys (skipping those another worker is claiming), move their next
  // poll on by a jittered interval, and queue a job for each.
  const pollLoop = (async () => {
    while (!stopping) {
      try {
        const due = await queryNamed(
          `UPDATE deltasync_keys SET next_poll_at = now() + $1::float8 * (1 - $2::float8 + 2 * $2::float8 * random()) * interval '1 millisecond'
            WHERE key IN (SELECT key FROM deltasync_keys WHERE parked_reason IS NULL AND next_poll_at <= now()
              ORDER BY next_poll_at LIMIT 500 FOR UPDATE SKIP LOCKED)
            RETURNING key`,
          [pollMs, jitter],
        );
        const keys = due.rows.map((k) => String(k.key));
        if (keys.length > 0) {
          await queue.enqueueMany(keys);
          nudge();
        }
      } catch (error) {
        // Unreachable database: the next tick tries again; no poll is lost (they stay due).
        options.onError?.(error, "poll");
      }
      try {
        await watchers?.tick();
      } catch (error) {
        options.onError?.(error, "watch");
      }
      await sleep(spread(tickMs)).catch(() => {});
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    get running() {
      return running.size;
    },
    get watching() {
      return watchers?.size ?? 0;
    },
    notify: async (key, o) => {
      await queue.enqueue(key, { debounceMs: o?.debounceMs ?? options.debounceMs ?? 1000 });
      nudge();
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        nudge();
        // A fetch in flight may still start jobs: they are stopped (and handed back) with the rest.
        await fetchLoop;
        for (const r of running.values()) r.controller.abort(new Error("worker stopping"));
        await Promise.all([...running.values()].map((r) => r.done));
        if (held.size > 0) {
          const releasing = [...held];
          held.clear();
          await letGo(releasing);
        }
        await pollLoop;
        await watchers?.stop();
        // Every unlock (runs' and watches') has run before the session goes back to the pool.
        await chain;
        await session.query("RESET synchronous_commit").then(
          () => session.release(),
          (error: unknown) => session.release(error as Error),
        );
        await queue.close();
        if (owned) await pool.end?.();
      })();
      return stopped;
    },
  };
}

export type { SyncQueue };
