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
  /**
   * May be a getter that checks and maps the page's records when first read: with `readAhead`
   * the engine reads it only after asking for the next page, so the server works meanwhile.
   */
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
 * Resuming inside a page (after `maxChanges`, a batch of `runSync`, a crash): a change may carry
 * `position` (a `ResumePoint`, or a function returning one) that covers every change before it,
 * e.g. a journal sequence number. Without it the state records the keys processed in the page
 * with a fingerprint of each change; the resumed round fetches the same `(cursor, page)` again,
 * skips only the changes it can prove were already applied (same key, same fingerprint),
 * delivers everything else, and asks `verify` about processed keys the new answer lacks. Pages
 * need not be repeatable: the second answer may be a newer snapshot.
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
  /**
   * The current version of objects this scope delivered earlier in the round: for each key an
   * `update` (the object as it is now, `created: false`) or a `delete` when it no longer exists
   * or left the scope or window. Keys the scope never held may be reported as deletes; order is
   * free. The engine calls it when a resumed page no longer lists objects it had delivered
   * (servers without tombstones drop an object created and deleted since the cursor, and a
   * value reverted to what the cursor saw). Without it, such a resume is a `StateInvalidError`.
   */
  verify?(keys: string[], request: PageRequest<C, P>): Promise<Change[]>;
  /**
   * True when a resumed round may not show what became of an object the importer was given:
   * the backend reports changes by comparing content with what the cursor saw (WebDAV servers
   * that diff trees, listings diffed by etag), so a change undone before the next sync is never
   * reported; or its listings have no tombstones and no repeatable page tokens. The engine then
   * marks each page's objects for verification before the importer sees them (a checkpoint for
   * `sync()`, `pendingState` saved by `runSync`), except in a full sync from nothing, whose
   * retry starts over and sweeps. Requires `verify`.
   */
  reportsByContent?: boolean;
  /**
   * What identifies the backend and scope this source reads (server epoch, collection URL,
   * calendar id and account, mailbox and UIDVALIDITY). Written into every state; a state made
   * against another identity is a `StateError` before anything is fetched.
   */
  identity?(signal: AbortSignal): string | Promise<string>;
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
