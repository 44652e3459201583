/**
 * Two-way sync: the app's local changes (the outbox), what an adapter must supply to write them
 * back (a `WriteTarget`), and conflicts. See docs/two-way.md.
 */
import type { SyncObject } from "../core/types.js";

/** What the app changed locally, as it records it in the outbox. */
export type LocalChange =
  | {
      kind: "create";
      /** The app's stable id of the object (the mirror row's `id`); coalescing is by this id. */
      localId: string;
      /**
       * The sourcekey the new object gets, chosen by the client (`WriteTarget.keyFor`) so that
       * a create replayed after a crash finds its own object instead of making a duplicate.
       */
      sourcekey: string;
      parentKey?: string;
      data: unknown;
    }
  | {
      kind: "update";
      localId: string;
      sourcekey: string;
      /** The version the app last saw (its base); the write is conditional on it. */
      changeKey?: string;
      parentKey?: string;
      data: unknown;
    }
  | { kind: "delete"; localId: string; sourcekey: string; changeKey?: string }
  | {
      kind: "move";
      localId: string;
      sourcekey: string;
      changeKey?: string;
      /** The folder it moves to. */
      parentKey: string;
    }
  | { kind: "read"; localId: string; sourcekey: string; changeKey?: string; isRead: boolean };

/** One pending local change: a `LocalChange` with its place in the pair's order. */
export type OutboxEntry = LocalChange & {
  /** Position in the pair's outbox; entries are pushed in ascending `seq`. */
  seq: number;
  /** When it was recorded (ms since the epoch); `newest-wins` compares it. */
  at: number;
  /**
   * Set when a merge resolution rewrote the data: the app's copy does not hold it yet, so the
   * pull delivers the written version instead of suppressing it as an echo.
   */
  merged?: true;
  /**
   * Set on a re-create (the server deleted the object, the app's edit is kept under a new key):
   * the key the app's copy still holds until the write-back, which pulls must leave alone too.
   */
  replaces?: string;
};

/** What a successful write left on the server. */
export interface WriteResult {
  /** The object's sourcekey now (a create's key, or a new key after a re-create). */
  sourcekey: string;
  /** The version the write produced, when the server said (etag, modseq, change number). */
  changeKey?: string;
  /** The object as the server now holds it, when the write's answer carried it. */
  object?: SyncObject;
}

/** The write options the pusher passes to each `WriteTarget` call. */
export interface WriteContext {
  signal: AbortSignal;
}

/**
 * The small write surface an adapter supplies for one collection. Every write is conditional:
 * `update`, `delete`, `move` and `read` only apply when the object's version is still the
 * entry's `changeKey` (when it has one), and fail with `ConflictError` otherwise; `create` fails
 * with `ConflictError` when `sourcekey` exists. An object that no longer exists is a
 * `NotFoundError`. Transient failures are `TransientError` (retried by the pusher).
 */
export interface WriteTarget {
  /** Names the collection in errors and logs (no credentials). */
  readonly id: string;
  /**
   * True when every change of an object (contents, folder, flags) gives it a new `changeKey`,
   * as a WebDAV etag does: a version `fetch` found after a crashed write is then recognised as
   * our echo by its changeKey alone, however the GET serialised it. Default: by its contents.
   */
  readonly changeKeyCoversAll?: boolean;
  /** The sourcekey a new object with this local id gets (a client-chosen id, stable per input). */
  keyFor(localId: string): string;
  create(entry: Extract<OutboxEntry, { kind: "create" }>, ctx: WriteContext): Promise<WriteResult>;
  update(entry: Extract<OutboxEntry, { kind: "update" }>, ctx: WriteContext): Promise<WriteResult>;
  delete(entry: Extract<OutboxEntry, { kind: "delete" }>, ctx: WriteContext): Promise<void>;
  /** Moves within the account; omit when the backend can't (the entry then blocks). */
  move?(entry: Extract<OutboxEntry, { kind: "move" }>, ctx: WriteContext): Promise<WriteResult>;
  /** Sets the read flag; omit when the backend has none. */
  read?(entry: Extract<OutboxEntry, { kind: "read" }>, ctx: WriteContext): Promise<WriteResult>;
  /** The object as it is on the server now, `undefined` when it does not exist. */
  fetch(sourcekey: string, ctx: WriteContext): Promise<SyncObject | undefined>;
  /**
   * True when `remote` already holds what `entry` writes: a write that landed before a crash
   * (or one the server answered with a conflict because it was ours) counts as done. True for
   * a delete only when the object it leaves (a message in Trash) still belongs to the pair's
   * collection: the pusher then hands it to `onRemote` as the server's version.
   */
  applied(entry: OutboxEntry, remote: SyncObject): boolean;
  /** The remote object's last-modified time (ms), for `newest-wins`; undefined when unknown. */
  modifiedAt?(remote: SyncObject): number | undefined;
}

/** What kind of race a conflict is. */
export type ConflictKind =
  /** Both sides changed the object. */
  | "edit"
  /** The app deleted it, the server changed it (vdirsyncer #128). */
  | "local-delete"
  /** The app changed it, the server deleted it. */
  | "remote-delete"
  /** The app created it, and an object with its key exists with other contents. */
  | "create";

/** How a conflict ends. */
export type Resolution =
  /** Write the app's version over the server's (conditionally on the server's current version). */
  | "local"
  /** Drop the app's pending changes of this object; its copy takes the server's version. */
  | "remote"
  /** Write these merged contents (an update; a re-create when the server deleted it). */
  | { merged: unknown };

/** A conflict the pusher met, kept in the outbox (open ones pause their pair). */
export interface Conflict {
  /** `<pair>#<seq>` (`.<n>` added for a later conflict of the same entry): unique per outbox. */
  id: string;
  pair: string;
  kind: ConflictKind;
  /** The entry that could not be written (the pair's head). */
  entry: OutboxEntry;
  /** The server's current version; null when it no longer exists. */
  remote: SyncObject | null;
  /** The version the app's change was based on. */
  base: string | undefined;
  /** ms since the epoch. */
  at: number;
  status: "open" | "resolved";
  resolution?: Resolution;
  /** Who resolved it: the pair's policy or the app (`resolve`). */
  resolvedBy?: "policy" | "app";
  /** True once the pusher carried the resolution out (the pair then moves on). */
  applied?: boolean;
  /** Local entries dropped by a `remote` resolution (nothing is dropped without this record). */
  dropped?: OutboxEntry[];
}

/** What to do with a conflict: a rule, a function deciding per conflict, or ask the app. */
export type ConflictPolicy =
  | "ask"
  | "server-wins"
  | "client-wins"
  /** The later of the entry's `at` and the remote's `modifiedAt` wins; ties and unknowns ask. */
  | "newest-wins"
  | ((conflict: Conflict) => Resolution | "ask" | Promise<Resolution | "ask">);
