/**
 * Buffers the changes of one round and hands them to the application, in order, either through
 * an `Importer` or through the batch callbacks (consecutive changes of one kind per call).
 */
import { applyChange } from "../core/engine.js";
import { ArgumentError, ImporterError, type ImporterHook } from "../core/errors.js";
import type { Change, DeletedObject, Importer, SyncObject } from "../core/types.js";

/** A deleted object with its delete flag. */
export interface DeletedRecord extends DeletedObject {
  soft: boolean;
}

/** A read-flag change. */
export interface ReadChange {
  sourcekey: string;
  parentKey?: string;
  isRead: boolean;
}

/** Batch callbacks in the style of the Aurinko orchestrator. Each may return a promise. */
export interface BatchCallbacks<T = unknown> {
  /** New and changed objects (moves arrive here too, with their new `parentKey`). */
  onUpdated?(records: SyncObject<T>[]): unknown;
  /** Deleted keys, and the deleted objects with type, parent and soft flag. */
  onDeleted?(keys: string[], objects: DeletedRecord[]): unknown;
  /** Read-flag changes. */
  onRead?(changes: ReadChange[]): unknown;
  /** Called before a forced full resync (`StateInvalidError`): drop the local copy. */
  onReset?(): unknown;
  /** A full sync starts from nothing: every object in scope follows (see `Importer.beginFullSync`). */
  onFullSyncBegin?(): unknown;
  /** That full sync completed: drop every object not updated since `onFullSyncBegin`. */
  onFullSyncEnd?(): unknown;
}

/** One round's changes, with the full-sync brackets that surround them. */
export interface Batch<T> {
  changes: Change<T>[];
  /** The round opened a full sync: `beginFullSync` comes before its changes. */
  begins: boolean;
  /** The round completed a full sync: `endFullSync` comes after its changes. */
  ends: boolean;
}

/** A target is an importer or callbacks; the buffer collects one round's changes for it. */
export class ChangeBuffer<T> {
  changes: Change<T>[] = [];
  begins = false;
  ends = false;
  readonly importer: Importer<T> = {
    beginFullSync: () => {
      this.begins = true;
    },
    endFullSync: () => {
      this.ends = true;
    },
    update: (object, flags) => {
      this.changes.push({ kind: "update", object, created: flags.created });
    },
    delete: (object, flags) => {
      this.changes.push({ kind: "delete", object, soft: flags.soft });
    },
    read: (object, isRead) => {
      this.changes.push({ kind: "read", object, isRead });
    },
    moved: (object, flags) => {
      this.changes.push({ kind: "move", object, fromParentKey: flags.fromParentKey });
    },
  };

  take(): Batch<T> {
    const out = { changes: this.changes, begins: this.begins, ends: this.ends };
    this.changes = [];
    this.begins = this.ends = false;
    return out;
  }
}

export interface BatchCounts {
  updated: number;
  deleted: number;
  read: number;
}

export function checkTarget<T>(
  importer: Importer<T> | undefined,
  callbacks: BatchCallbacks<T>,
): void {
  const hasCallbacks = Boolean(callbacks.onUpdated || callbacks.onDeleted || callbacks.onRead);
  if (importer && hasCallbacks) {
    throw new ArgumentError(
      "give either an importer or batch callbacks (onUpdated/onDeleted/onRead), not both",
    );
  }
  if (!importer && !hasCallbacks) {
    throw new ArgumentError("give an importer or at least one of onUpdated, onDeleted, onRead");
  }
}

/** Delivers one batch in order; resolves when the application confirmed every change. */
export async function deliverBatch<T>(
  batch: Batch<T>,
  importer: Importer<T> | undefined,
  callbacks: BatchCallbacks<T>,
): Promise<BatchCounts> {
  if (batch.begins) await bracket("beginFullSync", importer, callbacks);
  const counts = await deliverChanges(batch.changes, importer, callbacks);
  if (batch.ends) await bracket("endFullSync", importer, callbacks);
  return counts;
}

async function bracket<T>(
  hook: ImporterHook,
  importer: Importer<T> | undefined,
  callbacks: BatchCallbacks<T>,
): Promise<void> {
  try {
    if (importer) await importer[hook]?.();
    else if (hook === "beginFullSync") await callbacks.onFullSyncBegin?.();
    else await callbacks.onFullSyncEnd?.();
  } catch (cause) {
    throw new ImporterError(hook, cause);
  }
}

async function deliverChanges<T>(
  changes: readonly Change<T>[],
  importer: Importer<T> | undefined,
  callbacks: BatchCallbacks<T>,
): Promise<BatchCounts> {
  const counts: BatchCounts = { updated: 0, deleted: 0, read: 0 };
  for (const c of changes) {
    if (c.kind === "update" || c.kind === "move") counts.updated++;
    else if (c.kind === "delete") counts.deleted++;
    else counts.read++;
  }
  if (importer) {
    for (const change of changes) {
      const pending = applyChange(importer as Importer, change as Change);
      if (pending !== undefined) {
        try {
          await pending;
        } catch (cause) {
          throw new ImporterError(change as Change, cause);
        }
      }
    }
    return counts;
  }
  for (let i = 0; i < changes.length; ) {
    const first = changes[i] as Change<T>;
    const group = groupOf(first);
    let j = i + 1;
    while (j < changes.length && groupOf(changes[j] as Change<T>) === group) j++;
    const run = changes.slice(i, j);
    try {
      await deliverRun(group, run, callbacks);
    } catch (cause) {
      throw new ImporterError(first as Change, cause);
    }
    i = j;
  }
  return counts;
}

function groupOf(change: Change<unknown>): "updated" | "deleted" | "read" {
  return change.kind === "delete" ? "deleted" : change.kind === "read" ? "read" : "updated";
}

async function deliverRun<T>(
  group: "updated" | "deleted" | "read",
  run: Change<T>[],
  callbacks: BatchCallbacks<T>,
): Promise<void> {
  if (group === "updated") {
    const records = run.map((c) => c.object as SyncObject<T>);
    await callbacks.onUpdated?.(records);
  } else if (group === "deleted") {
    const objects = run.map((c) => {
      const d = c as Extract<Change<T>, { kind: "delete" }>;
      return { ...d.object, soft: d.soft };
    });
    await callbacks.onDeleted?.(
      objects.map((o) => o.sourcekey),
      objects,
    );
  } else {
    const reads = run.map((c) => {
      const r = c as Extract<Change<T>, { kind: "read" }>;
      const out: ReadChange = { sourcekey: r.object.sourcekey, isRead: r.isRead };
      if (r.object.parentKey !== undefined) out.parentKey = r.object.parentKey;
      return out;
    });
    await callbacks.onRead?.(reads);
  }
}
