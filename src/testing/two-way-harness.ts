/**
 * What an adapter author supplies to run the two-way conformance kit (`checkTwoWayConformance`)
 * against a write target. Adapter-neutral: the kit keeps its own local copy of the scope, makes
 * the app's edits through an outbox, and asks the harness only for the backend's side — the
 * scope to pull, the `WriteTarget` to push to, and a second client's edits made straight on the
 * backend. Moves and read flags are optional capabilities.
 */
import type { Syncable } from "../core/syncable.js";
import type { SyncObject } from "../core/types.js";
import type { StateStore } from "../stores/types.js";
import type { WriteTarget } from "../two-way/types.js";

/**
 * Another client editing the backend directly (not through the adapter's write target): the
 * "remote" side of every race. Each call acts at once and resolves when the backend holds it.
 */
export interface TwoWayRemote {
  /** Creates an object in `folder` whose data carries `label` (see `TwoWayHarness.labelOf`). */
  create(label: string, folder: string): Promise<void>;
  /** Changes the object so that its data carries `label` (its identity, e.g. a UID, stays). */
  update(sourcekey: string, label: string): Promise<void>;
  delete(sourcekey: string): Promise<void>;
  /** Moves the object to `folder`. Omit when the backend has no moves. */
  move?(sourcekey: string, folder: string): Promise<void>;
  /** Sets the object's read flag. Omit when the backend has none. */
  setRead?(sourcekey: string, isRead: boolean): Promise<void>;
}

/** One fresh backend (or a fresh collection of a shared server) for one random history. */
export interface TwoWayBackend {
  /** The scope the app pulls (the kit pulls it with `runSync` and a `twoWayImporter`). */
  syncable: Syncable;
  /** The write surface the app pushes to (the kit wraps it to inject faults and crashes). */
  target: WriteTarget;
  /**
   * Folders (parentKeys) objects live in: local and remote creates go to one of them, moves go
   * between them. The first is where the target creates by default. One entry when the backend
   * has a single collection.
   */
  folders: readonly string[];
  /** The second client's edits. */
  remote: TwoWayRemote;
  /**
   * The sourcekeys of every object in scope as the backend holds them now, read without the
   * adapter's sync (the kit reads each one's contents through `target.fetch`).
   */
  list(): Promise<string[]>;
  /** Waits until remote edits are visible to the scope's sync (default: nothing to wait for). */
  settle?(): Promise<void>;
  /** Frees the backend (deletes the collection, closes clients). Called once, also on failure. */
  teardown(): Promise<void>;
}

/**
 * The harness: how to make a fresh backend, and how labels map onto the backend's data.
 * The kit writes short labels (`"a"`, `"b"`, …) as the content of local and remote edits, and
 * reads them back to check that no local edit was lost.
 */
export interface TwoWayHarness {
  /** The backend's name in failure messages. */
  name: string;
  /**
   * Makes a fresh backend holding a few objects already (the app's first pull copies them).
   * The kit calls it once per history.
   */
  setup(): Promise<TwoWayBackend>;
  /**
   * The data of a local create (`previous` undefined) or update (`previous`: the copy's current
   * data, whose identity — a UID, an id — an update keeps) that carries `label`, in the shape the
   * adapter's pull delivers and its write target accepts.
   */
  localData(label: string, previous: unknown, info: { localId: string; folder: string }): unknown;
  /** The label an object's data carries (what `localData` or the remote client wrote). */
  labelOf(data: unknown): string | undefined;
  /**
   * True when the app's copy of an object and the server's hold the same content (servers
   * refold or normalise). Default: equal as stable JSON.
   */
  same?(local: unknown, remote: unknown): boolean;
  /** The object's read flag, for backends with flags. Default: `data.read` when a boolean. */
  readOf?(obj: SyncObject): boolean | undefined;
  /** Local and remote moves between `folders` (needs `target.move` and `remote.move`). */
  moves?: boolean;
  /** Local and remote read-flag changes (needs `target.read` and `remote.setRead`). */
  flags?: boolean;
  /**
   * A fresh store for the outbox and the pull state of one history (the kit reopens the outbox
   * over the same store after a simulated crash: a new process). Default: a memory store.
   */
  store?(): StateStore | Promise<StateStore>;
}
