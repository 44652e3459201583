/**
 * An importer that records what it is given, shared by the adapter test suites.
 */
import type { Importer, SyncObject } from "../src/core/types.js";

export interface Recorder {
  /** The objects as last updated (deletes remove them). */
  items: Map<string, SyncObject>;
  /** The last read flag per key. */
  reads: Map<string, boolean>;
  /** Every call, in order: `update k`, `delete k`, `read k true`, `moved k from->to`. */
  log: string[];
  importer: Importer;
}

/** A recording importer; `moved: true` opts into moves (else they arrive as delete + update). */
export function recorder(options: { moved?: boolean } = {}): Recorder {
  const items = new Map<string, SyncObject>();
  const reads = new Map<string, boolean>();
  const log: string[] = [];
  const importer: Importer = {
    update: (obj) => {
      log.push(`update ${obj.sourcekey}`);
      items.set(obj.sourcekey, obj);
    },
    delete: (obj) => {
      log.push(`delete ${obj.sourcekey}`);
      items.delete(obj.sourcekey);
    },
    read: (obj, isRead) => {
      log.push(`read ${obj.sourcekey} ${isRead}`);
      reads.set(obj.sourcekey, isRead);
    },
  };
  if (options.moved) {
    importer.moved = (obj, flags) => {
      log.push(`moved ${obj.sourcekey} ${flags.fromParentKey}->${obj.parentKey}`);
      items.set(obj.sourcekey, obj);
    };
  }
  return { items, reads, log, importer };
}
