/**
 * Shared setup of the targeted Graph tests: accounts on the emulator, a recording importer.
 */
import {
  createGraphAccount,
  type GraphAccount,
  type GraphOptions,
} from "../../adapters/graph/index.js";
import type { Importer, SyncObject } from "../../src/core/types.js";
import type { GraphEmulator } from "./emulator.js";

/** An account on the emulator with fast retries. */
export function account(emulator: GraphEmulator, extra: Partial<GraphOptions> = {}): GraphAccount {
  return createGraphAccount({
    baseUrl: emulator.baseUrl,
    accessToken: "test-token",
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 50 },
    ...extra,
  });
}

/** An importer that records into a map (and a log of calls). */
export function recorder(): {
  items: Map<string, SyncObject>;
  reads: Map<string, boolean>;
  log: string[];
  importer: Importer;
} {
  const items = new Map<string, SyncObject>();
  const reads = new Map<string, boolean>();
  const log: string[] = [];
  return {
    items,
    reads,
    log,
    importer: {
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
      moved: (obj, flags) => {
        log.push(`moved ${obj.sourcekey} ${flags.fromParentKey}->${obj.parentKey}`);
        items.set(obj.sourcekey, obj);
      },
    },
  };
}
