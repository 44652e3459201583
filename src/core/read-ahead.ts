/**
 * Read-ahead for sources that declare `readAhead`: while the engine imports page N, page N+1 is
 * already on the wire. It only overlaps I/O with the import; the engine still advances the state
 * only after page N is imported.
 *
 * Pages are kept per source (at most two, for at most `maxAgeMs`) so a round that stops at
 * `maxChanges` hands the next round what it already has: the page it stopped inside (no re-fetch
 * to skip what was imported) and the page it requested ahead.
 */
import { letRequestsOut } from "./sleep.js";
import type { ChangeSource, Page, PageRequest } from "./source.js";

const DEFAULT_MAX_AGE_MS = 60_000;
const MAX_KEPT = 2;

interface Entry {
  key: string;
  at: number;
  /** Aborts the request when the round that waits for it is aborted. */
  controller: AbortController;
  promise: Promise<Page>;
  /** Requested by an earlier round: a failure is stale, so the page is fetched again. */
  carried: boolean;
}

const kept = new WeakMap<ChangeSource, Entry[]>();

/** One round's view of its source's read-ahead; `end()` must be called when the round ends. */
export class ReadAhead {
  readonly #source: ChangeSource;
  readonly #signal: AbortSignal;
  readonly #maxAgeMs: number;
  readonly #entries: Entry[];
  readonly #onAbort = () => {
    for (const entry of this.#entries) entry.controller.abort(this.#signal.reason);
  };

  constructor(source: ChangeSource, signal: AbortSignal) {
    this.#source = source;
    this.#signal = signal;
    const option = source.readAhead;
    this.#maxAgeMs =
      typeof option === "object" ? (option.maxAgeMs ?? DEFAULT_MAX_AGE_MS) : DEFAULT_MAX_AGE_MS;
    const now = Date.now();
    this.#entries = (kept.get(source) ?? []).filter((e) => now - e.at <= this.#maxAgeMs);
    for (const entry of this.#entries) entry.carried = true;
    kept.set(source, this.#entries);
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The page for `request`: the one requested ahead when there is one, else a fresh fetch. */
  async fetch(request: PageRequest): Promise<Page> {
    const key = keyOf(request);
    const index = this.#entries.findIndex((e) => e.key === key);
    if (index < 0) {
      // What is held is for positions this round does not pass through.
      this.drop();
      return this.#source.fetchPage(request);
    }
    const [entry] = this.#entries.splice(index, 1) as [Entry];
    // No longer held, so the round's abort must reach it here (a source may wait long inside
    // one page, e.g. for a server to get ready).
    const onAbort = () => entry.controller.abort(this.#signal.reason);
    this.#signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await entry.promise;
    } catch (error) {
      if (this.#signal.aborted) throw error;
      // A failure from an earlier round is stale, and an abort not ours was another round's.
      if (!entry.carried && !entry.controller.signal.aborted) throw error;
      return this.#source.fetchPage(request);
    } finally {
      this.#signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * The round's first page, requested before the round is ready to read it (while the identity
   * resolves). Like `fetch`, a round that starts where nothing is held drops what is held for
   * other positions: those pages belong to another round's chain.
   */
  async begin(request: PageRequest): Promise<void> {
    const key = keyOf(request);
    if (!this.#entries.some((e) => e.key === key)) this.drop();
    await this.prefetch(request);
  }

  /** Starts fetching `request` now, and lets it reach the wire before the import blocks the thread. */
  async prefetch(request: PageRequest): Promise<void> {
    const key = keyOf(request);
    if (this.#entries.some((e) => e.key === key)) return;
    const controller = new AbortController();
    const promise = this.#source.fetchPage({ ...request, signal: controller.signal });
    promise.catch(() => {});
    this.#hold({ key, at: Date.now(), controller, promise, carried: false });
    await letRequestsOut();
  }

  /** Keeps a page this round fetched but did not finish, for the next round to resume inside. */
  keep(request: PageRequest, page: Page): void {
    const controller = new AbortController();
    const promise = Promise.resolve(page);
    this.#hold({ key: keyOf(request), at: Date.now(), controller, promise, carried: false });
  }

  /** Ends the round; what it kept or requested ahead stays for the next round. */
  end(): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
  }

  /** Drops (and aborts) everything held: the round failed, so the next starts elsewhere. */
  drop(): void {
    for (const entry of this.#entries) entry.controller.abort();
    this.#entries.length = 0;
  }

  #hold(entry: Entry): void {
    this.#entries.unshift(entry);
    for (const dropped of this.#entries.splice(MAX_KEPT)) dropped.controller.abort();
  }
}

function keyOf(request: PageRequest): string {
  return JSON.stringify([request.cursor, request.page, request.fullSync, request.window ?? null]);
}
