/**
 * Keeping a push subscription alive (Google channels and Gmail watches, Graph subscriptions):
 * renew on a schedule, back off after failures, and stop without racing a renewal in flight.
 */

/** Options of `keepRenewed`. */
export interface RenewalOptions {
  /** Milliseconds until the next renewal while all is well (e.g. an hour before expiry). */
  nextDelay(): number;
  /** Renews; a rejection goes to `onError` and the next try backs off. */
  renew(): Promise<void>;
  onError?: (error: unknown) => void;
  /** The first retry after a failure waits this long, doubling up to `maxBackoffMs`. Default 60 s. */
  minBackoffMs?: number;
  /** Default one hour. */
  maxBackoffMs?: number;
}

/** A running renewal schedule. */
export interface Renewal {
  /** No more renewals; resolves once a renewal in flight has settled. Safe to call twice. */
  stop(): Promise<void>;
  readonly stopped: boolean;
}

/** Starts renewing after `nextDelay()`; the subscription itself must already exist. */
export function keepRenewed(options: RenewalOptions): Renewal {
  const minBackoffMs = options.minBackoffMs ?? 60_000;
  const maxBackoffMs = options.maxBackoffMs ?? 3600_000;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;
  let renewing: Promise<void> | undefined;

  const schedule = () => {
    // After a failure the expiry has not moved: without a backoff the next try would be now.
    const delay =
      failures === 0
        ? options.nextDelay()
        : Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(failures - 1, 20));
    timer = setTimeout(
      () => {
        renewing = renew();
      },
      Math.min(Math.max(0, delay), 2 ** 31 - 1),
    );
    timer.unref();
  };
  const renew = async () => {
    if (stopped) return;
    try {
      await options.renew();
      failures = 0;
    } catch (error) {
      failures++;
      options.onError?.(error);
    }
    if (!stopped) schedule();
  };
  schedule();
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      await renewing;
    },
    get stopped() {
      return stopped;
    },
  };
}
