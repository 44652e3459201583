/**
 * Shared setup of the targeted Google tests: an emulator and accounts pointed at it.
 */
import {
  createGoogleAccount,
  type GoogleAccount,
  type GoogleOptions,
} from "../../adapters/google/index.js";
import type { Importer, SyncObject } from "../../src/core/types.js";
import type { GoogleEmulator } from "./emulator.js";

/** An account on the emulator with fast retries. */
export function account(
  emulator: GoogleEmulator,
  extra: Partial<GoogleOptions> = {},
): GoogleAccount {
  return createGoogleAccount({
    baseUrl: emulator.url,
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
    },
  };
}

/** The query strings of the requests to `path` so far. */
export function queries(emulator: GoogleEmulator, path: RegExp): URLSearchParams[] {
  return emulator.requests.filter((r) => path.test(r.path)).map((r) => r.query);
}
