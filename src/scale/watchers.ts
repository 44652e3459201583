/**
 * Long-lived push connections (IMAP IDLE or NOTIFY, a provider's streaming API) in a worker
 * fleet: each account that asks for one (`push: { watch: true }` in the registry) is watched by
 * exactly one worker at a time, the holder of a session advisory lock `deltasync:watch:<id>`.
 * When that worker dies PostgreSQL drops its session and the lock; another worker claims the
 * account on its next tick, and first queues a sync of every key of the account (changes made
 * while nobody watched are caught up; the safety polls cover the gap meanwhile).
 */
import { describeError } from "../orchestrator/redact.js";
import { type AccountRecord, accountOf, WATCHED } from "./accounts.js";
import { TRY_LOCK_SQL, UNLOCK_SQL, watchLock } from "./locks.js";

/** What `watch` is given for one account. */
export interface WatchContext {
  /** What `getCredentials(account.id)` resolved with. */
  credentials: unknown;
  /** Aborted when this worker gives the account up (it stops, the account is removed, the lock is lost). */
  signal: AbortSignal;
  /** Requests a sync of one of the account's scopes (debounced, coalesced; any worker runs it). */
  notify(scope: string): Promise<void>;
}

/** Runs one account's push connection until `signal` aborts; rejecting hands it back. */
export type WatchAccount = (account: AccountRecord, context: WatchContext) => Promise<void>;

export interface WatcherDeps {
  watch: WatchAccount;
  maxWatches: number;
  /** After a watch failed, how long this worker leaves the account to others (ms). */
  retryMs: number;
  getCredentials(accountId: string): unknown;
  /** A query on the worker's lock session (one at a time). */
  lease(text: string, values: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  enqueue(key: string, debounceMs: number): Promise<void>;
  debounceMs: number;
  onError?(error: unknown): void;
}

interface Watched {
  controller: AbortController;
  done: Promise<void>;
}

/** The accounts this worker watches; `tick()` claims and drops, `stop()` gives all up. */
export function createWatchers(d: WatcherDeps) {
  const watched = new Map<string, Watched>();
  /** Accounts whose watch failed here, with the time before which this worker leaves them be. */
  const resting = new Map<string, number>();

  const start = (account: AccountRecord) => {
    const controller = new AbortController();
    const notify = (scope: string) => d.enqueue(`${account.id}/${scope}`, d.debounceMs);
    const done = (async () => {
      try {
        // Nobody watched until now: what changed meanwhile is found by one sync of each key.
        for (const scope of account.scopes) await d.enqueue(`${account.id}/${scope}`, 0);
        const credentials = await d.getCredentials(account.id);
        await d.watch(account, { credentials, signal: controller.signal, notify });
      } catch (error) {
        if (!controller.signal.aborted) {
          resting.set(account.id, Date.now() + d.retryMs);
          d.onError?.(new Error(`watch of ${account.id} failed: ${describeError(error)}`));
        }
      } finally {
        watched.delete(account.id);
        await d.lease(UNLOCK_SQL, [watchLock(account.id)]).catch(() => {});
      }
    })();
    watched.set(account.id, { controller, done });
  };

  return {
    get size() {
      return watched.size;
    },
    has: (accountId: string) => watched.has(accountId),
    /** Drops accounts no longer asking for a watch, then claims unwatched ones up to the limit. */
    async tick(): Promise<void> {
      const now = Date.now();
      for (const [id, until] of resting) if (until <= now) resting.delete(id);
      if (watched.size > 0) {
        const still = await d.query(
          `SELECT id FROM deltasync_accounts WHERE id = ANY($1::text[])
            AND ${WATCHED}`,
          [[...watched.keys()]],
        );
        const keep = new Set(still.rows.map((r) => String(r.id)));
        for (const [id, w] of watched)
          if (!keep.has(id)) w.controller.abort(new Error("unwatched"));
      }
      const room = d.maxWatches - watched.size;
      if (room <= 0) return;
      // A random few per tick, so the workers of a fleet share the accounts.
      const candidates = await d.query(
        `SELECT id, adapter, scopes, push, created_at FROM deltasync_accounts
          WHERE ${WATCHED} AND NOT (id = ANY($1::text[]))
          ORDER BY random() LIMIT $2`,
        [[...watched.keys(), ...resting.keys()], Math.min(room, 16)],
      );
      for (const row of candidates.rows) {
        const id = String(row.id);
        const got = await d.lease(TRY_LOCK_SQL, [watchLock(id)]);
        if (got.rows[0]?.ok !== true) continue;
        // Claimed by this worker while it was being given up here: the lock is re-entrant.
        if (watched.has(id)) {
          await d.lease(UNLOCK_SQL, [watchLock(id)]);
          continue;
        }
        start(accountOf(row));
      }
    },
    /** The locks are gone (the session failed): another worker may watch them already. */
    lost(): void {
      for (const w of watched.values()) w.controller.abort(new Error("lock session lost"));
    },
    async stop(): Promise<void> {
      for (const w of watched.values()) w.controller.abort(new Error("worker stopping"));
      await Promise.all([...watched.values()].map((w) => w.done));
    },
  };
}
