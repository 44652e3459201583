/**
 * What an adapter author supplies to run the conformance kit against their backend.
 */
import type { Arbitrary } from "fast-check";
import type { Syncable } from "../core/syncable.js";
import type { SyncObject } from "../core/types.js";

/** One object as the backend truly holds it, in the form the mirror keeps. */
export interface MirrorEntry {
  type: SyncObject["type"];
  parentKey?: string;
  /** The projected data (see `ConformanceScope.project`); compared with deep equality. */
  data: unknown;
  /** The read flag, for scopes that track it. */
  read?: boolean;
}

/** A scope under test and how to read its true contents. */
export interface ConformanceScope {
  /** A label for failure messages, e.g. `folder INBOX`. */
  name: string;
  syncable: Syncable;
  /** The backend's true contents of this scope, keyed by sourcekey, read without the adapter's sync. */
  truth(): Promise<Map<string, MirrorEntry>>;
  /** Turns an exported object's data into the comparable form `truth()` uses. Default: `obj.data`. */
  project?(obj: SyncObject): unknown;
  /** Reads the read flag off an exported object; set it for scopes whose items have one. */
  readOf?(obj: SyncObject): boolean | undefined;
  /** A new syncable for the same scope, as a restarted process builds it (no pages kept). */
  reopen?(): Syncable | Promise<Syncable>;
  /**
   * A complete state of this scope's name made against another backend instance, collection or
   * account: syncing this scope with it must be a `StateError` before any importer call.
   */
  foreignState?(): Promise<string>;
  /**
   * A state of this scope whose cursor is ahead of the server's head (a server restored from an
   * older snapshot, a token it never issued): it must be a `StateInvalidError`.
   */
  aheadState?(): Promise<string>;
}

/** One fresh backend (or a fresh corner of a shared one) for one random history. */
export interface ConformanceBackend<Op> {
  scopes: ConformanceScope[];
  /** Applies one random mutation. Ops that no longer make sense (e.g. delete of nothing) are no-ops. */
  apply(op: Op): Promise<void>;
  /**
   * Makes every state issued so far invalid (journal compaction, token expiry, a UIDVALIDITY
   * change). Omit when the backend can't do it on demand.
   */
  expireStates?(): Promise<void>;
  /**
   * Makes the next sync request fail once: `invalid` as an expired or refused state (410, 403
   * valid-sync-token, a UIDVALIDITY change), `transient` as a 500/503 or a cut connection.
   * Called only right before a sync that has a state.
   */
  injectFault?(kind: "invalid" | "transient"): Promise<void> | void;
  /** Waits until mutations are visible to sync and notifications (default: nothing to wait for). */
  settle?(): Promise<void>;
  teardown(): Promise<void>;
}

export interface ConformanceHarness<Op> {
  /** The backend's name in failure messages. */
  name: string;
  /** Random mutations for this backend. */
  mutation: Arbitrary<Op>;
  /** Makes a fresh backend for one history. */
  setup(): Promise<ConformanceBackend<Op>>;
}
