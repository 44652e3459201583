/**
 * Outlook allows 4 concurrent requests per app and mailbox (PROTOCOLS.md §2.4): every scope of
 * one account (read-ahead included) shares one `HttpClient` that queues past that limit.
 */
import type { HttpClient, HttpRequest, HttpResponse } from "../../src/http/index.js";

interface Waiter {
  grant(): void;
  reject(reason: unknown): void;
  signal: AbortSignal | undefined;
}

/**
 * Wraps `http` so at most `limit` requests are in flight; the rest wait in FIFO order. Waiters
 * that share a signal (one sync round's requests, an app's shutdown signal) share one abort
 * listener: a long queue never piles listeners on a signal (Node warns past 10).
 */
export function limitConcurrency(
  http: HttpClient,
  limit: number,
): HttpClient & { active(): number } {
  let active = 0;
  const waiting: Waiter[] = [];
  /** The waiters of each signal and its one listener. */
  const bySignal = new Map<AbortSignal, { waiters: Set<Waiter>; onAbort: () => void }>();

  const forget = (w: Waiter) => {
    if (!w.signal) return;
    const entry = bySignal.get(w.signal);
    if (!entry) return;
    entry.waiters.delete(w);
    if (entry.waiters.size === 0) {
      w.signal.removeEventListener("abort", entry.onAbort);
      bySignal.delete(w.signal);
    }
  };
  const watch = (w: Waiter, signal: AbortSignal) => {
    let entry = bySignal.get(signal);
    if (!entry) {
      const waiters = new Set<Waiter>();
      const onAbort = () => {
        bySignal.delete(signal);
        for (const aborted of waiters) {
          const i = waiting.indexOf(aborted);
          if (i >= 0) waiting.splice(i, 1);
          aborted.reject(signal.reason);
        }
      };
      entry = { waiters, onAbort };
      bySignal.set(signal, entry);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    entry.waiters.add(w);
  };

  const acquire = (signal: AbortSignal | undefined): Promise<void> => {
    signal?.throwIfAborted();
    if (active < limit) {
      active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        signal,
        reject,
        grant: () => {
          forget(w);
          active++;
          resolve();
        },
      };
      waiting.push(w);
      if (signal) watch(w, signal);
    });
  };
  const release = () => {
    active--;
    waiting.shift()?.grant();
  };
  return {
    baseUrl: http.baseUrl,
    close: () => http.close(),
    active: () => active,
    async request<T>(req: HttpRequest<T>): Promise<HttpResponse<T>> {
      await acquire(req.signal);
      try {
        return await http.request(req);
      } finally {
        release();
      }
    },
  };
}
