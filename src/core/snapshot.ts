/**
 * The snapshot source: incremental sync for listings that have no change cursor (an IMAP LIST,
 * a PROPFIND of a home set, an href+etag listing). The cursor is the last listing's
 * `sourcekey → changeKey` map; each round diffs the new listing against it.
 */
import { z } from "zod";
import type { ChangeSource, PageRequest } from "./source.js";
import type { Change, SyncObject } from "./types.js";

export type Snapshot = Record<string, string>;

export interface SnapshotOptions<T> {
  /** Every object that exists now, each with a `changeKey` that changes when it does. */
  list(request: PageRequest<Snapshot, never>): Promise<SyncObject<T>[]>;
}

/** Diffs two listings: creations and updates in listing order, then deletions. */
export function diffSnapshot<T>(
  previous: Snapshot,
  current: SyncObject<T>[],
  type: SyncObject["type"],
): { changes: Change[]; snapshot: Snapshot } {
  const snapshot: Snapshot = {};
  const changes: Change[] = [];
  for (const obj of current) {
    const version = obj.changeKey ?? "";
    snapshot[obj.sourcekey] = version;
    const before = previous[obj.sourcekey];
    if (before === version) continue;
    changes.push({ kind: "update", object: obj, created: before === undefined });
  }
  for (const key of Object.keys(previous)) {
    if (!(key in snapshot)) {
      changes.push({ kind: "delete", object: { sourcekey: key, type }, soft: false });
    }
  }
  return { changes, snapshot };
}

/** Builds a single-page `ChangeSource` from a full listing. */
export function snapshotSource<T>(
  options: SnapshotOptions<T> & { type: SyncObject["type"] },
): ChangeSource<Snapshot, never> {
  return {
    async fetchPage(req) {
      const listing = await options.list(req);
      const { changes, snapshot } = diffSnapshot(req.cursor ?? {}, listing, options.type);
      return { changes, newCursor: snapshot };
    },
    cursorSchema: z.record(z.string(), z.string()),
  };
}
