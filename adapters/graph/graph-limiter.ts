/**
 * Outlook allows 4 concurrent requests per app and mailbox (PROTOCOLS.md §2.4): every scope of
 * one account (read-ahead included) shares one `HttpClient` that queues past that limit.
 */
import type { HttpClient, HttpRequest, HttpResponse } from "../../src/http/index.js";

/** Wraps `http` so at most `limit` requests are in flight; the rest wait in FIFO order. */
export function limitConcurrency(
  http: HttpClient,
  limit: number,
): HttpClient & { active(): number } {
  let active = 0;
  const waiting: (() => void)[] = [];
  const acquire = (signal: AbortSignal | undefined): Promise<void> => {
    if (active < limit) {
      active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        active++;
        resolve();
      };
      const onAbort = () => {
        const i = waiting.indexOf(grant);
        if (i >= 0) waiting.splice(i, 1);
        reject(signal?.reason);
      };
      waiting.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };
  const release = () => {
    active--;
    waiting.shift()?.();
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
