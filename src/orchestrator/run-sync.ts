/**
 * The orchestrator: one sync round of a scope with batching, checkpoints, compare-and-set state
 * saving, retries, reset-on-invalid-state, per-key serialisation and telemetry.
 */
import { ArgumentError, ConflictError, StateInvalidError } from "../core/errors.js";
import { type RetryPolicy, resolveRetryPolicy, retryDelay } from "../core/retry.js";
import { letRequestsOut, sleep } from "../core/sleep.js";
import { fullSyncState } from "../core/state.js";
import type { Syncable } from "../core/syncable.js";
import type { Change, Importer, SyncOutcome, SyncWindow } from "../core/types.js";
import type { StateStore } from "../stores/types.js";
import { checkMassChange, type MassChangeGuard } from "../two-way/mass-change.js";
import {
  type Batch,
  type BatchCallbacks,
  ChangeBuffer,
  checkTarget,
  deliverBatch,
} from "./batch.js";
import { type Concurrency, defaultRunner, type KeyedRunner } from "./keyed.js";
import { RunTelemetry } from "./telemetry.js";

/** Options of `runSync` and the `syncEmail` / `syncCalendar` / `syncContacts` conveniences. */
export interface RunSyncOptions<T = unknown> extends BatchCallbacks<T> {
  /** Receives every change, in order (instead of the batch callbacks). Its `reset` hook is honoured. */
  importer?: Importer<T>;
  /** Changes per batch; every batch but the last of a run has exactly this many. Default 500. */
  batchSize?: number;
  /** The serialisation and state key. Default `<adapter>:<scope>` (the conveniences use the account id). */
  key?: string;
  /** Where states live (compare-and-set). Alternative to `getState` / `saveState`. */
  store?: StateStore;
  /** Loads the saved state (alternative to `store`). */
  getState?(): unknown;
  /** Saves a state; resolve `false` when `previous` is no longer the saved one (lost race). */
  saveState?(state: string, previous: string | undefined): unknown;
  /** Aborts the run; the state stays at the last confirmed batch. */
  signal?: AbortSignal;
  /** Retries of transient failures (default 5, exponential backoff with jitter); `false`: none. */
  retry?: RetryPolicy | false;
  /** Bounds a full sync (kept in the state); or give `daysWithin` / `timeMin` / `timeMax`. */
  window?: SyncWindow;
  daysWithin?: number;
  timeMin?: string | Date;
  timeMax?: string | Date;
  /** A call for a busy key: `queue` one follow-up (default) or `join` the running run. */
  concurrency?: Concurrency;
  /** The per-key runner; default one per process. */
  runner?: KeyedRunner;
  /** Called after every confirmed batch. */
  onProgress?(progress: SyncProgress): unknown;
  /** Forced full resyncs allowed in one run before the `StateInvalidError` is thrown. Default 2. */
  maxResets?: number;
  /**
   * The mass-change guard: the run's deletes (and a completing full sync's sweep) are held back
   * until the run has every change; if they exceed the threshold (default: more than 50 % of
   * `size()` and more than 20) the run throws `MassChangeError` with nothing deleted and the
   * state not saved past the first delete. `createSqliteMirror`'s `callbacks` carry one.
   * While deletes are held back no state is saved, so a crash replays the run from there.
   */
  massChange?: MassChangeGuard | false;
  /** Apply the deletes a `MassChangeError` held back (the app confirmed them). */
  confirmMassChange?: boolean;
}

/** Running totals, passed to `onProgress`. */
export interface SyncProgress {
  updated: number;
  deleted: number;
  read: number;
  batches: number;
  pages: number;
}

/** What one run did. */
export interface SyncResult extends SyncProgress {
  /** The key the run was serialised and saved under. */
  key: string;
  durationMs: number;
  /** The state after the run (also saved). */
  state: string;
  /** True when the run was (or resumed) a full sync. */
  fullSync: boolean;
  /** True when an invalid state forced a reset and a full resync. */
  reset: boolean;
}

/**
 * Runs one full or incremental sync of a scope to completion, in batches of exactly `batchSize`
 * changes; saves a resumable state after every batch the callbacks confirmed.
 * Delivery is at least once: after a crash the last unconfirmed batch is delivered again.
 * @example
 * const result = await runSync(folder, {
 *   store: createSqliteStateStore("state.sqlite"),
 *   batchSize: 200,
 *   onUpdated: (records) => db.upsertMany(records),
 *   onDeleted: (keys) => db.deleteMany(keys),
 * });
 * // { updated: 1200, deleted: 3, read: 0, pages: 3, batches: 7, fullSync: true, reset: false, … }
 */
export async function runSync<T>(
  syncable: Syncable<T>,
  options: RunSyncOptions<T>,
): Promise<SyncResult> {
  const batchSize = options.batchSize ?? 500;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new ArgumentError(`batchSize must be a positive integer, got ${String(batchSize)}`);
  }
  checkTarget(options.importer, options);
  if (options.store && (options.getState || options.saveState)) {
    throw new ArgumentError("give either a store or getState/saveState, not both");
  }
  const key = options.key ?? `${syncable.adapter}:${syncable.scope}`;
  const runner = options.runner ?? defaultRunner;
  return runner.run(key, () => runOnce(syncable, key, batchSize, options), options.concurrency);
}

async function runOnce<T>(
  syncable: Syncable<T>,
  key: string,
  batchSize: number,
  options: RunSyncOptions<T>,
): Promise<SyncResult> {
  const { signal } = options;
  const telemetry = new RunTelemetry(key, syncable.adapter, syncable.scope);
  const policy = resolveRetryPolicy(options.retry);
  const window = windowOf(options);
  const maxResets = options.maxResets ?? 2;
  const totals: SyncProgress = { updated: 0, deleted: 0, read: 0, batches: 0, pages: 0 };
  let fullSync: boolean | undefined;
  let reset = false;
  let resets = 0;
  let failures = 0;
  // The next batch's round, read while the callbacks write this one (see `startRound`).
  let ahead: Round<T> | undefined;
  const guard = options.massChange || undefined;
  // Deletes held back by the guard (by sourcekey), and a full sync's end waiting for its check.
  const deferred = new Map<string, Change<T>>();
  let endHeld = false;
  try {
    signal?.throwIfAborted();
    const size = guard ? await guard.size() : 0;
    // `saved` is what the store holds (the compare-and-set expectation); `state` is where to go on.
    let saved = await loadState(key, options);
    let state = saved;
    telemetry.start(saved !== undefined);
    for (;;) {
      signal?.throwIfAborted();
      const round =
        ahead !== undefined && ahead.from === state
          ? ahead
          : startRound(syncable, state, batchSize, window, signal);
      if (ahead !== round) ahead?.cancel();
      ahead = undefined;
      try {
        const { outcome, batch: fetched } = await round.result;
        const { changes } = fetched;
        const batch = guard ? holdDeletes(fetched, deferred) : fetched;
        if (guard && fetched.ends) endHeld = true;
        // While deletes are held back, no state may pass them: a crash replays from before.
        const holding = deferred.size > 0 || endHeld;
        fullSync ??= outcome.fullSync;
        for (let i = 1; i <= outcome.pages; i++) telemetry.page(totals.pages + i);
        totals.pages += outcome.pages;
        if (!outcome.complete && changes.length > 0) {
          ahead = startRound(syncable, outcome.state, batchSize, window, signal);
          // Let its first request reach the wire before synchronous callbacks hold the thread.
          await letRequestsOut();
        }
        if (outcome.pendingState !== undefined && changes.length > 0 && !holding) {
          // The backend can't report a change undone later: mark the batch's objects first.
          await saveState(key, options, saved, outcome.pendingState);
          saved = outcome.pendingState;
        }
        if (changes.length > 0 || batch.begins || batch.ends) {
          const started = performance.now();
          const counts = await deliverBatch(batch, options.importer, options);
          if (outcome.state !== saved && !holding) {
            await saveState(key, options, saved, outcome.state);
            saved = outcome.state;
          }
          totals.updated += counts.updated;
          totals.deleted += counts.deleted;
          totals.read += counts.read;
          if (changes.length > 0) {
            totals.batches++;
            telemetry.batch({
              batch: totals.batches,
              size: changes.length,
              ...counts,
              durationMs: Math.round(performance.now() - started),
            });
            await options.onProgress?.({ ...totals });
          }
        } else if (outcome.state !== saved && !holding) {
          await saveState(key, options, saved, outcome.state);
          saved = outcome.state;
        }
        state = outcome.state;
        failures = 0;
        if (outcome.complete && guard && holding) {
          const swept = endHeld ? ((await guard.sweepSize?.()) ?? 0) : 0;
          checkMassChange(
            key,
            "pull",
            deferred.size + swept,
            size,
            guard,
            options.confirmMassChange,
          );
          const held = { changes: [...deferred.values()], begins: false, ends: endHeld };
          const counts = await deliverBatch(held, options.importer, options);
          deferred.clear();
          endHeld = false;
          totals.deleted += counts.deleted;
          if (outcome.state !== saved) {
            await saveState(key, options, saved, outcome.state);
            saved = outcome.state;
          }
        }
        if (outcome.complete) break;
      } catch (error) {
        ahead?.cancel();
        ahead = undefined;
        if (signal?.aborted) throw error;
        if (error instanceof StateInvalidError && resets < maxResets) {
          resets++;
          reset = true;
          fullSync = true;
          telemetry.reset(error);
          // Saved before the local copy is dropped: if the full sync then fails, the next attempt
          // starts from nothing instead of the refused state (whose delta can't rebuild the copy).
          const restart = fullSyncState(syncable.adapter, syncable.scope, window);
          if (saved !== restart) {
            await saveState(key, options, saved, restart);
            saved = restart;
          }
          // The full sync starts over: what it sweeps at its end is counted then.
          deferred.clear();
          endHeld = false;
          await options.importer?.reset?.();
          await options.onReset?.();
          state = restart;
          continue;
        }
        if (failures < policy.retries && policy.retryable(error)) {
          failures++;
          const delayMs = retryDelay(failures, error, policy);
          telemetry.retry(failures, delayMs, error);
          await sleep(delayMs, signal);
          continue;
        }
        throw error;
      }
    }
    const result: SyncResult = {
      key,
      ...totals,
      durationMs: telemetry.elapsedMs,
      state: state as string,
      fullSync: fullSync ?? false,
      reset,
    };
    const { key: _k, state: _s, ...summary } = result;
    telemetry.end(summary);
    return result;
  } catch (error) {
    telemetry.error(error);
    throw error;
  } finally {
    ahead?.cancel();
  }
}

/**
 * The batch without its deletes, which join `held` (a later update of the same object cancels
 * its held delete: the object is back), and without its full sync's end (the sweep is a delete).
 */
function holdDeletes<T>(batch: Batch<T>, held: Map<string, Change<T>>): Batch<T> {
  const changes: Change<T>[] = [];
  for (const c of batch.changes) {
    if (c.kind === "delete") {
      held.delete(c.object.sourcekey);
      held.set(c.object.sourcekey, c);
      continue;
    }
    if (c.kind === "update" || c.kind === "move") held.delete(c.object.sourcekey);
    changes.push(c);
  }
  return { changes, begins: batch.begins, ends: false };
}

/** One engine round (at most `batchSize` changes) into its own buffer. */
interface Round<T> {
  /** The state it started from. */
  from: string | undefined;
  result: Promise<{ outcome: SyncOutcome; batch: Batch<T> }>;
  cancel(): void;
}

/**
 * Starts reading a batch. The orchestrator starts the next batch's round as soon as it has this
 * one's changes, so fetching overlaps with the callbacks writing; nothing is saved until the
 * callbacks confirm, and a round that is not wanted any more is cancelled (aborted).
 */
function startRound<T>(
  syncable: Syncable<T>,
  from: string | undefined,
  batchSize: number,
  window: SyncWindow | undefined,
  signal: AbortSignal | undefined,
): Round<T> {
  const controller = new AbortController();
  const buffer = new ChangeBuffer<T>();
  const result = syncable
    .exportChanges(buffer.importer, from ?? null, {
      maxChanges: batchSize,
      signal: signal ? AbortSignal.any([signal, controller.signal]) : controller.signal,
      window,
    })
    .then((outcome) => ({ outcome, batch: buffer.take() }));
  // A cancelled round's rejection is nobody's concern.
  result.catch(() => {});
  return { from, result, cancel: () => controller.abort(new Error("round no longer needed")) };
}

function windowOf(options: RunSyncOptions<unknown>): SyncWindow | undefined {
  const iso = (v: string | Date | undefined) => (v instanceof Date ? v.toISOString() : v);
  const w: SyncWindow = { ...options.window };
  if (options.daysWithin !== undefined) w.daysWithin = options.daysWithin;
  if (options.timeMin !== undefined) w.timeMin = iso(options.timeMin);
  if (options.timeMax !== undefined) w.timeMax = iso(options.timeMax);
  for (const k of Object.keys(w) as (keyof SyncWindow)[]) if (w[k] === undefined) delete w[k];
  return Object.keys(w).length ? w : undefined;
}

async function loadState(
  key: string,
  options: RunSyncOptions<unknown>,
): Promise<string | undefined> {
  const raw = options.store ? await options.store.get(key) : await options.getState?.();
  if (raw === undefined || raw === null || raw === "") return undefined;
  if (typeof raw !== "string") {
    throw new ArgumentError(
      `getState must resolve with a state string or nothing, got ${typeof raw}`,
    );
  }
  return raw;
}

async function saveState(
  key: string,
  options: RunSyncOptions<unknown>,
  previous: string | undefined,
  next: string,
): Promise<void> {
  let ok: unknown = true;
  if (options.store) ok = await options.store.compareAndSet(key, previous, next);
  else if (options.saveState) ok = await options.saveState(next, previous);
  if (ok === false) {
    throw new ConflictError(
      `the state of "${key}" was changed by another run; this run stopped without overwriting it`,
    );
  }
}
