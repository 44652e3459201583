/**
 * The ICS model: what an adapter exports and what an importer or sink receives.
 * Modelled on Kopano's ICS (see docs/concepts.md).
 */

/** What kind of object changed: a mail/calendar/contact item, a folder, or an address-book user. */
export type ObjectType = "item" | "folder" | "user";

/** What happened to it. */
export type EventType = "created" | "updated" | "deleted";

export const OBJECT_TYPES: readonly ObjectType[] = ["item", "folder", "user"];
export const EVENT_TYPES: readonly EventType[] = ["created", "updated", "deleted"];

/** The latest version of an object, as exported by a sync or carried by a notification. */
export interface SyncObject<T = unknown> {
  /** The backend's stable id (Google event id, DAV href, IMAP `uidvalidity:uid`, …). */
  sourcekey: string;
  type: ObjectType;
  /** The sourcekey of the folder (or store) holding the object, where the backend has one. */
  parentKey?: string;
  /** The version of the object (etag, changeKey, modseq), where the backend has one. */
  changeKey?: string;
  /** The adapter's representation of the object. */
  data: T;
}

/** What is left of an object after its deletion: only its key. */
export interface DeletedObject {
  sourcekey: string;
  type: ObjectType;
  parentKey?: string;
}

/** The object whose read flag changed (items only). */
export interface ReadState {
  sourcekey: string;
  parentKey?: string;
}

/** Shared and frozen: the engine hands the same object to every such call. */
export interface UpdateFlags {
  /**
   * True when the backend reports the object as new since the state's cursor: every object of a
   * full sync, and objects created since the last sync. A hint only: an object may arrive with
   * `created: true` more than once (replays after a crash), so always upsert.
   */
  readonly created: boolean;
}

/** Shared and frozen, like `UpdateFlags`. */
export interface DeleteFlags {
  /** True for a soft delete (moved to a recoverable place), false for a hard one. */
  readonly soft: boolean;
}

export interface MoveFlags {
  /** The folder the object was in before the move. */
  fromParentKey: string;
}

/**
 * Receives the changes of a sync. Every method is optional and may return a promise; the next
 * change is delivered only after the previous call resolved. Importers must be idempotent:
 * delivery is at least once, so a change may be replayed after a crash.
 */
export interface Importer<T = unknown> {
  /** A new or changed object. Upsert it by `sourcekey`. */
  update?(obj: SyncObject<T>, flags: UpdateFlags): unknown;
  /** A deleted object. Must tolerate objects it never saw; a folder delete implies its subtree. */
  delete?(obj: DeletedObject, flags: DeleteFlags): unknown;
  /** The read flag of an item changed (Kopano's read-state channel). */
  read?(obj: ReadState, isRead: boolean): unknown;
  /** Opt-in: receive moves as moves. Without it a move arrives as `delete` + `update(created)`. */
  moved?(obj: SyncObject<T>, flags: MoveFlags): unknown;
  /** Called by the orchestrator before a forced full resync: drop the local copy. */
  reset?(): unknown;
  /**
   * A full sync starts from nothing (no state, or after a reset): every object in scope follows
   * as `update`, then `endFullSync`. Called again when a failed full sync starts over, never
   * when one resumes from a checkpoint.
   */
  beginFullSync?(): unknown;
  /**
   * The full sync that `beginFullSync` opened is complete: every object not updated since then
   * no longer exists (or left the window) and must be dropped. This is how a copy stays readable
   * during a resync and still loses what was deleted while a failed full sync was retried.
   */
  endFullSync?(): unknown;
}

/** One change as an adapter reports it to the engine. */
export type Change<T = unknown> =
  | { kind: "update"; object: SyncObject<T>; created: boolean; position?: unknown }
  | { kind: "delete"; object: DeletedObject; soft: boolean; position?: unknown }
  | { kind: "read"; object: ReadState; isRead: boolean; position?: unknown }
  | { kind: "move"; object: SyncObject<T>; fromParentKey: string; position?: unknown };

/** A real-time event: a hint that something changed, never a substitute for a sync. */
export interface Notification<T = unknown> {
  objectType: ObjectType;
  eventType: EventType;
  object: SyncObject<T> | DeletedObject;
  /** The scope that emitted it, e.g. `folder:inbox`, `store:alice`, `server`. */
  scope: string;
}

/** Receives notifications (Kopano's sink). */
export interface Sink<T = unknown> {
  update(notification: Notification<T>): unknown;
}

/** Which notifications to deliver; an omitted list means all. */
export interface NotificationFilter {
  objectTypes?: readonly ObjectType[];
  eventTypes?: readonly EventType[];
}

/** A time window that bounds a full sync; kept in the state so incremental syncs repeat it. */
export interface SyncWindow {
  /** Only objects of the last N days (mail: received; events: start). */
  daysWithin?: number;
  /** ISO 8601 lower bound (calendars). */
  timeMin?: string;
  /** ISO 8601 upper bound (calendars). */
  timeMax?: string;
}

/** Options of every `sync` call. */
export interface SyncOptions {
  /** Aborts the sync; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Stop after this many changes with a state that resumes exactly where it stopped. */
  maxChanges?: number;
  /**
   * Receives a resumable state after each fully imported page; for backends that report changes
   * by comparing content (`ChangeSource.reportsByContent`), also one before each page of an
   * incremental sync that marks the page's objects for verification. Save each as it comes.
   */
  onCheckpoint?: (state: string) => unknown;
  /** Bounds a full sync; must equal the stored window when given with a state. */
  window?: SyncWindow;
}

/** What one sync round did, for callers that need more than the next state. */
export interface SyncOutcome {
  /** The state to pass to the next sync. */
  state: string;
  /** True when the backend has no more changes right now; false after `maxChanges` stopped it. */
  complete: boolean;
  /** True when this round started without a state (a full sync). */
  fullSync: boolean;
  /** Importer calls made, by kind. */
  counts: { update: number; delete: number; read: number; move: number };
  /** Pages fetched. */
  pages: number;
  /**
   * Only for backends that report changes by comparing content: the state to save *before*
   * applying this round's changes. It resumes where this round started and marks the objects
   * this round delivers for verification, so a change applied and then undone on the server
   * before `state` was saved is still found. `runSync` saves it for you.
   */
  pendingState?: string;
}
