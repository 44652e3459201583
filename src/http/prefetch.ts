/**
 * Read-ahead for page fetchers: while the engine imports page N, page N+1 is already on the wire.
 * The engine still advances the state only after page N is imported; this only overlaps I/O.
 */
import type { ChangeSource, Page, PageRequest } from "../core/source.js";

/** Options of `prefetching`. */
export interface PrefetchOptions {
  /** A prefetched page older than this is dropped and fetched again; default 60 000 ms. */
  maxAgeMs?: number;
}

/**
 * Wraps a source so that every page with a `nextPage` starts fetching that next page at once.
 * The prefetched page is used only when the engine asks for exactly that
 * `(cursor, page, fullSync, window)` with the same abort signal; otherwise it is dropped.
 * A prefetch that fails is dropped too, and the engine's own request then fails (or succeeds) anew.
 *
 * @example
 * const source = prefetching(eventsSource({ http, calendarId: "primary" }));
 */
export function prefetching<C, P>(
  source: ChangeSource<C, P>,
  options: PrefetchOptions = {},
): ChangeSource<C, P> {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  let pending:
    | { key: string; signal: AbortSignal; at: number; promise: Promise<Page<C, P>> }
    | undefined;

  return {
    cursorSchema: source.cursorSchema,
    pageSchema: source.pageSchema,
    async fetchPage(request: PageRequest<C, P>): Promise<Page<C, P>> {
      const key = keyOf(request);
      const hit =
        pending !== undefined &&
        pending.key === key &&
        pending.signal === request.signal &&
        Date.now() - pending.at <= maxAgeMs
          ? pending.promise
          : undefined;
      pending = undefined;
      let page: Page<C, P>;
      try {
        page = await (hit ?? source.fetchPage(request));
      } catch (error) {
        // A failed read-ahead is retried once in the foreground, where the caller sees its error.
        if (hit === undefined || request.signal.aborted) throw error;
        page = await source.fetchPage(request);
      }
      if (page.nextPage !== undefined && !request.signal.aborted) {
        // Mirrors the engine: the next request carries newCursor (when given) and nextPage.
        const next: PageRequest<C, P> = {
          ...request,
          cursor: page.newCursor ?? request.cursor,
          page: page.nextPage,
        };
        const promise = source.fetchPage(next);
        promise.catch(() => {});
        pending = { key: keyOf(next), signal: request.signal, at: Date.now(), promise };
        // Let the request reach the socket before a synchronous importer blocks the thread: undici
        // writes it only once the previous response has released its socket, a loop turn later
        // (measured: one turn was not enough, two were; see bench/google.bench.ts).
        for (let i = 0; i < YIELDS; i++)
          await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return page;
    },
  };
}

const YIELDS = 2;

function keyOf(request: PageRequest<unknown, unknown>): string {
  return JSON.stringify([request.cursor, request.page, request.fullSync, request.window ?? null]);
}
