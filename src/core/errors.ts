/**
 * Every error deltasync throws, under one base class with a stable `code`.
 * A subclass exists only for a failure a caller can act on; library errors are wrapped as `cause`.
 */
import { quote } from "./quote.js";
import type { Change } from "./types.js";

export class DeltaSyncError extends Error {
  readonly code: string = "ERR_DELTASYNC";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The state string is corrupt, from another adapter or scope, or was made with another filter. */
export class StateError extends DeltaSyncError {
  override readonly code = "ERR_STATE";
}

/**
 * The backend no longer accepts the cursor in the state (Google 410, DAV valid-sync-token,
 * IMAP UIDVALIDITY change, JMAP cannotCalculateChanges, …). Drop the local copy and full-sync.
 */
export class StateInvalidError extends DeltaSyncError {
  override readonly code = "ERR_STATE_INVALID";
}

/** A full-sync bracket of the importer (see `Importer.beginFullSync`). */
export type ImporterHook = "beginFullSync" | "endFullSync";

/**
 * The importer threw; `change` is the change it was given (undefined when it was a full-sync
 * hook, named by `hook`). State does not move past it.
 */
export class ImporterError extends DeltaSyncError {
  override readonly code = "ERR_IMPORTER";
  readonly change: Change | undefined;
  readonly hook: ImporterHook | undefined;
  constructor(change: Change | ImporterHook, cause: unknown) {
    const what =
      typeof change === "string" ? change : `${change.kind} of ${quote(change.object.sourcekey)}`;
    super(`importer failed on ${what}: ${errorMessage(cause)}`, { cause });
    this.change = typeof change === "string" ? undefined : change;
    this.hook = typeof change === "string" ? change : undefined;
  }
}

/** The backend answered something that breaks its protocol (malformed body, missing field). */
export class ProtocolError extends DeltaSyncError {
  override readonly code = "ERR_PROTOCOL";
  /** The endpoint (URL, command) that answered. */
  readonly endpoint: string;
  constructor(endpoint: string, message: string, options?: { cause?: unknown }) {
    super(`${endpoint}: ${message}`, options);
    this.endpoint = endpoint;
  }
}

/** An adapter returned the same page cursor it was given: paging would never end. */
export class CursorStalledError extends DeltaSyncError {
  override readonly code = "ERR_CURSOR_STALLED";
}

/** A call was made with arguments that can never work. */
export class ArgumentError extends DeltaSyncError {
  override readonly code = "ERR_ARGUMENT";
}

/** The adapter does not support this scope or option. */
export class NotSupportedError extends DeltaSyncError {
  override readonly code = "ERR_NOT_SUPPORTED";
}

/** The backend rejected the credentials (after one refresh, where refresh is possible). */
export class AuthError extends DeltaSyncError {
  override readonly code = "ERR_AUTH";
}

/** A write lost a race: the object changed on the server since the given version (HTTP 412). */
export class ConflictError extends DeltaSyncError {
  override readonly code = "ERR_CONFLICT";
}

/** The object or collection does not exist (a folder that was removed, a missing mailbox). */
export class NotFoundError extends DeltaSyncError {
  override readonly code = "ERR_NOT_FOUND";
}

/**
 * A failure worth retrying later: 5xx, 429, 408, connection reset, timeout.
 * `retryAfterMs` carries the server's `Retry-After`, when it sent one.
 */
export class TransientError extends DeltaSyncError {
  override readonly code = "ERR_TRANSIENT";
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    options?: { cause?: unknown; status?: number; retryAfterMs?: number },
  ) {
    super(message, options);
    this.status = options?.status;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
  "ETRANSIENT",
]);

/** True for failures that a retry may fix: `TransientError` and network-level error codes. */
export function isTransient(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  if (error instanceof DeltaSyncError) return false;
  for (let e = error, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Two-way sync: the pair's head entry could not be written (a non-retryable failure, or retries
 * ran out). It stays at the head and blocks the entries behind it, in order, until a later push
 * succeeds; `cause` is the adapter's error.
 */
export class PushBlockedError extends DeltaSyncError {
  override readonly code = "ERR_PUSH_BLOCKED";
  /** The pair that is blocked. */
  readonly pair: string;
  /** The seq and local id of the entry that failed. */
  readonly seq: number;
  readonly localId: string;
  constructor(pair: string, entry: { seq: number; localId: string; kind: string }, cause: unknown) {
    super(
      `push ${pair}: ${entry.kind} of ${quote(entry.localId)} (#${entry.seq}) failed and blocks the entries behind it: ${errorMessage(cause)}`,
      { cause },
    );
    this.pair = pair;
    this.seq = entry.seq;
    this.localId = entry.localId;
  }
}

/** Two-way sync: another pusher (another process) pushed this pair's head entry meanwhile. */
export class PushRaceError extends DeltaSyncError {
  override readonly code = "ERR_PUSH_RACE";
}

/**
 * Two-way sync: one pull round or one push would delete more of a collection than the pair's
 * mass-change threshold allows (vdirsyncer's "storage suddenly empty": an account emptied by
 * mistake, a server answering with nothing). Nothing was deleted and the state or outbox did
 * not move past the deletes; the next call with `confirmMassChange: true` applies them.
 */
export class MassChangeError extends DeltaSyncError {
  override readonly code = "ERR_MASS_CHANGE";
  /** The pair (or state key) that paused. */
  readonly pair: string;
  /** `pull`: the server's deletes would empty the copy; `push`: the app's would empty the server. */
  readonly direction: "pull" | "push";
  /** Objects the round would delete. */
  readonly deletes: number;
  /** Objects the collection held before the round. */
  readonly size: number;
  /** The threshold that tripped: more than `share` of `size` and more than `min` objects. */
  readonly threshold: { share: number; min: number };
  constructor(
    pair: string,
    direction: "pull" | "push",
    deletes: number,
    size: number,
    threshold: { share: number; min: number },
  ) {
    super(
      `${direction} ${quote(pair)} would delete ${deletes} of ${size} objects (more than ${Math.round(threshold.share * 100)} % and more than ${threshold.min}): paused until confirmed (confirmMassChange: true)`,
    );
    this.pair = pair;
    this.direction = direction;
    this.deletes = deletes;
    this.size = size;
    this.threshold = threshold;
  }
}
