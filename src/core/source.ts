/**
 * The adapter-author contract: a scope is a page fetcher plus a mapping to `Change`s.
 * The engine (engine.ts) owns paging, importer calls, checkpoints, limits and the state envelope.
 */
import type { Observable } from "rxjs";
import type { ZodType } from "zod";
import type { Change, Notification, NotificationFilter, SyncWindow } from "./types.js";

/** What the engine asks an adapter for: the next page of changes. */
export interface PageRequest<C = unknown, P = unknown> {
  /** Covers every change already imported; `undefined` before the first page of a full sync. */
  cursor: C | undefined;
  /** The `nextPage` of the previous page of this round; `undefined` on a round's first page. */
  page: P | undefined;
  /** True while the round is a full sync (it started without a state). */
  fullSync: boolean;
  /** The window the full sync was bounded by, as the caller gave it or the state recorded it. */
  window: SyncWindow | undefined;
  signal: AbortSignal;
}

/** One page of changes, in the order the importer must see them. */
export interface Page<C = unknown, P = unknown> {
  changes: Change[];
  /** More pages follow in this round; fetch them with this token (and the same cursor). */
  nextPage?: P;
  /**
   * A cursor that covers every change up to the end of this page. Required on the last page of a
   * round (no `nextPage`) unless the cursor did not change; optional before it (Google's
   * `nextSyncToken` only comes with the last page).
   */
  newCursor?: C;
}

/** Where to resume right after one change, for adapters whose pages are not repeatable. */
export interface ResumePoint<C = unknown, P = unknown> {
  cursor?: C;
  page?: P;
}

/**
 * One scope of one backend as the engine sees it.
 *
 * Resuming after `maxChanges`: a change may carry `position` (a `ResumePoint`, or a function
 * returning one). Without it the engine re-fetches the same page and skips what was imported,
 * which is only correct when the same `(cursor, page)` yields the same changes in the same order.
 */
export interface ChangeSource<C = unknown, P = unknown> {
  fetchPage(request: PageRequest<C, P>): Promise<Page<C, P>>;
  /** Validates the cursor read back from a state; a failure is a `StateError`. */
  cursorSchema?: ZodType<C>;
  /** Validates the page token read back from a state. */
  pageSchema?: ZodType<P>;
  /**
   * The engine may request page N+1 while page N is imported (and keep a page for the next round
   * when `maxChanges` stops one inside it). Only for sources whose page is a plain function of
   * `(cursor, page, fullSync, window)`, e.g. HTTP list calls with a page token. Kept pages are
   * used for at most `maxAgeMs` (default 60 000).
   */
  readAhead?: boolean | { maxAgeMs?: number };
}

/** Everything the engine needs to turn a source into a public syncable scope. */
export interface ScopeDefinition<C = unknown, P = unknown, T = unknown> {
  /** The adapter id written into states, e.g. `memory`, `google`. */
  adapter: string;
  /** The scope id written into states, e.g. `folder:inbox`, `hierarchy:alice`, `gab`, `server`. */
  scope: string;
  source: ChangeSource<C, P>;
  /** The window keys this backend can honour; any other key given is an `ArgumentError`. */
  windowKeys?: readonly (keyof SyncWindow)[];
  /** Push: an Observable of raw notifications. Omit when the backend has none (poll only). */
  notifications?: (filter: NotificationFilter) => Observable<Notification<T>>;
}
