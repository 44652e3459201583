/**
 * Keeps a scope in sync: push notifications (coalesced) merged with a periodic safety poll,
 * every round through `runSync` (same key serialisation, retries, checkpoints). In two-way mode
 * each round pulls then pushes the pair's outbox, and local edits start a round too.
 */
import { filter, Observable, type Subscription } from "rxjs";
import { ArgumentError, AuthError, NotSupportedError, StateError } from "../core/errors.js";
import type { Syncable } from "../core/syncable.js";
import type { NotificationFilter } from "../core/types.js";
import type { Outbox } from "../two-way/outbox.js";
import { type PushOptions, type PushResult, push } from "../two-way/push.js";
import { settlePushed } from "../two-way/settle.js";
import type { WriteTarget } from "../two-way/types.js";
import { defaultRunner } from "./keyed.js";
import { type RunSyncOptions, runSync, type SyncResult } from "./run-sync.js";

/**
 * What started a round: the first one, a push notification, the safety poll, a retry after a
 * failed round, a local edit recorded in the outbox (two-way), or a conflict resolved (two-way).
 */
export type WatchTrigger = "initial" | "push" | "poll" | "retry" | "local" | "resolve";

/** One round's result, with what triggered it and how many notifications it coalesced. */
export interface WatchResult extends SyncResult {
  trigger: WatchTrigger;
  notifications: number;
  /** Two-way mode: what the round's push did (`status: "paused"` while a conflict waits). */
  push?: PushResult;
}

/** `watch`'s two-way mode: after each pull, push the pair's pending local edits. */
export interface WatchTwoWay
  extends Omit<PushOptions, "pair" | "signal" | "runner" | "maxEntries"> {
  /** The adapter's write surface for the watched scope. */
  target: WriteTarget;
  /** Where local edits wait (the SQLite mirror's `outbox`); its `recorded()` starts rounds. */
  outbox: Outbox;
  /** The pair to push (the SQLite mirror's `source`). Default: the watch's `key`. */
  pair?: string;
  /** Run `settlePushed` after each pull (servers that omit created-then-deleted objects). */
  settle?: boolean;
}

export interface WatchOptions<T = unknown> extends RunSyncOptions<T> {
  /** The safety poll interval (ms): pushes get lost, so poll anyway. Default 60 000. */
  pollIntervalMs?: number;
  /** Notifications within this window (ms) after the first one coalesce into one round. Default 100. */
  debounceMs?: number;
  /** Run a round at once when subscribed. Default true. */
  initialSync?: boolean;
  /** Which notifications trigger a round (default: all of the scope). */
  filter?: NotificationFilter;
  /** Backoff after a failed round (ms): min·2^(n-1), capped. Defaults 1 000 and 60 000. */
  errorBackoffMinMs?: number;
  errorBackoffMaxMs?: number;
  /** Consecutive failed rounds before the Observable errors. Default 10. */
  maxConsecutiveErrors?: number;
  /** Sees every failed round (the Observable only errors after `maxConsecutiveErrors`). */
  onError?(error: unknown): unknown;
  /**
   * Two-way mode: every round pulls, then pushes the pair's outbox; a local edit recorded in
   * the outbox and a conflict resolved through `outbox.resolve` start a round. While a conflict
   * pauses the pair, rounds keep pulling and local edits wait (they start no round).
   */
  twoWay?: WatchTwoWay;
}

/** Errors that no retry can fix: the Observable errors at once. */
function isPermanent(error: unknown): boolean {
  return (
    error instanceof ArgumentError ||
    error instanceof AuthError ||
    error instanceof StateError ||
    error instanceof NotSupportedError
  );
}

/**
 * An Observable of sync results that runs a round on subscribe, on every (coalesced) push
 * notification and on a periodic safety poll. Unsubscribing or aborting `signal` stops it and
 * aborts a running round (state stays at its last confirmed batch).
 * @example
 * const sub = watch(folder, { store, onUpdated: upsertMany, onDeleted: deleteMany, pollIntervalMs: 300_000 })
 *   .subscribe((r) => console.log(`${r.trigger}: +${r.updated} -${r.deleted}`));
 * // two-way: local edits through the mirror reach the server without a push call
 * watch(folder, { ...mirror.callbacks, store, key: pair,
 *   twoWay: { target, outbox: mirror.outbox, pair, ...mirror.pushCallbacks } }).subscribe();
 */
export function watch<T>(syncable: Syncable<T>, options: WatchOptions<T>): Observable<WatchResult> {
  const pollIntervalMs = options.pollIntervalMs ?? 60_000;
  const debounceMs = options.debounceMs ?? 100;
  const backoffMin = options.errorBackoffMinMs ?? 1000;
  const backoffMax = options.errorBackoffMaxMs ?? 60_000;
  const maxErrors = options.maxConsecutiveErrors ?? 10;
  for (const [name, v] of [
    ["pollIntervalMs", pollIntervalMs],
    ["debounceMs", debounceMs],
  ] as const) {
    if (!(Number.isFinite(v) && v >= 0)) throw new ArgumentError(`${name} must be >= 0`);
  }
  const twoWay = options.twoWay;
  const pair = twoWay?.pair ?? options.key ?? `${syncable.adapter}:${syncable.scope}`;
  if (twoWay && (!twoWay.target || !twoWay.outbox)) {
    throw new ArgumentError("watch: twoWay needs a target and an outbox");
  }
  const runner = options.runner ?? defaultRunner;
  return new Observable<WatchResult>((subscriber) => {
    const controller = new AbortController();
    const outer = options.signal;
    const onOuterAbort = () => {
      stop();
      subscriber.complete();
    };
    let pushSub: Subscription | undefined;
    let localSub: Subscription | undefined;
    /** Two-way: an open conflict pauses the pair's pushes (pulls go on). */
    let paused = false;
    let debounceTimer: ReturnType<typeof setTimeout> | undefined;
    let pollTimer: ReturnType<typeof setTimeout> | undefined;
    let backoffTimer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let pending: WatchTrigger | undefined;
    let coalesced = 0;
    let consecutiveErrors = 0;
    let stopped = false;

    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(debounceTimer);
      clearTimeout(pollTimer);
      clearTimeout(backoffTimer);
      pushSub?.unsubscribe();
      localSub?.unsubscribe();
      outer?.removeEventListener("abort", onOuterAbort);
      controller.abort(new Error("watch stopped"));
    };

    const schedulePoll = () => {
      clearTimeout(pollTimer);
      if (stopped || pollIntervalMs === 0) return;
      pollTimer = setTimeout(() => trigger("poll"), pollIntervalMs);
    };

    const trigger = (why: WatchTrigger) => {
      if (stopped) return;
      // A round is already due: keep the first reason (push beats poll for reporting).
      if (pending === undefined || why === "push") pending = pending === "initial" ? pending : why;
      if (!running && backoffTimer === undefined) void loop();
    };

    /**
     * One round: the pull, then (two-way) the push. Run under the pair's key of the keyed
     * runner, so two watches of one pair in this process never pull and push at once (a
     * second watch's round may join the first one's queued round).
     */
    const round = async (): Promise<{ result: SyncResult; pushed?: PushResult }> => {
      const signal = controller.signal;
      const result = await runSync(syncable, { ...options, signal });
      if (!twoWay) return { result };
      const { target, outbox, settle, pair: _pair, ...pushOptions } = twoWay;
      if (settle) await settlePushed(target, outbox, { pair, signal, onRemote: twoWay.onRemote });
      const pushed = await push(target, outbox, { ...pushOptions, pair, signal, runner });
      return { result, pushed };
    };

    const loop = async () => {
      running = true;
      while (pending !== undefined && !stopped) {
        const why = pending;
        pending = undefined;
        // Notifications so far are covered by this round; later ones start a new debounce.
        const notifications = coalesced;
        coalesced = 0;
        clearTimeout(debounceTimer);
        debounceTimer = undefined;
        clearTimeout(pollTimer);
        try {
          const { result, pushed } = await runner.run(`round:${pair}`, round);
          consecutiveErrors = 0;
          if (pushed) paused = pushed.status === "paused";
          if (!stopped) {
            subscriber.next({
              ...result,
              trigger: why,
              notifications,
              ...(pushed ? { push: pushed } : {}),
            });
          }
        } catch (error) {
          if (stopped) break;
          consecutiveErrors++;
          await Promise.resolve(options.onError?.(error)).catch(() => undefined);
          if (isPermanent(error) || consecutiveErrors >= maxErrors) {
            stop();
            subscriber.error(error);
            break;
          }
          const delay = Math.min(backoffMax, backoffMin * 2 ** (consecutiveErrors - 1));
          backoffTimer = setTimeout(() => {
            backoffTimer = undefined;
            trigger("retry");
          }, delay);
          break;
        }
      }
      running = false;
      if (!stopped && backoffTimer === undefined) schedulePoll();
    };

    if (outer?.aborted) {
      subscriber.complete();
      return;
    }
    outer?.addEventListener("abort", onOuterAbort, { once: true });
    if (syncable.supportsPush) {
      pushSub = syncable.notifications(options.filter).subscribe({
        next: () => {
          coalesced++;
          if (debounceTimer !== undefined || stopped) return;
          debounceTimer = setTimeout(() => {
            debounceTimer = undefined;
            trigger("push");
          }, debounceMs);
        },
        // A broken push channel is not fatal: the safety poll keeps the mirror correct.
        error: (error) => {
          void Promise.resolve(options.onError?.(error)).catch(() => undefined);
        },
      });
    }
    if (twoWay) {
      localSub = twoWay.outbox.recorded().subscribe((p) => {
        if (p === pair && !paused) trigger("local");
      });
      localSub.add(
        twoWay.outbox
          .conflictEvents()
          .pipe(filter((c) => c.pair === pair && c.status === "resolved" && c.resolvedBy === "app"))
          .subscribe(() => {
            // The app decided: carry the resolution out now, not at the next poll.
            paused = false;
            trigger("resolve");
          }),
      );
    }
    if (options.initialSync ?? true) trigger("initial");
    else schedulePoll();
    return stop;
  });
}
