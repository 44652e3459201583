/**
 * The calendar list (`GET /calendars`) and the task lists (`GET /tasklists`) as hierarchies.
 * Aurinko has no delta stream and no version for them: each round lists every page, reports
 * every listed folder as an update and every folder of the previous listing that is gone as a
 * delete. Diffing by content instead would miss a folder changed, handed to an importer that
 * then failed, and changed back before the retry (the retry's diff sees no change). Hierarchies
 * are small, so the repeat costs little.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import type { Snapshot } from "../../src/core/snapshot.js";
import type { ChangeSource } from "../../src/core/source.js";
import type { Change, SyncObject } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { type AurinkoFolder, FolderPageSchema } from "./schemas.js";

export interface FolderSourceOptions {
  http: HttpClient;
  /** `calendars` or `tasklists`. */
  path: "calendars" | "tasklists";
  accountId(signal: AbortSignal): Promise<string>;
}

/** The page fetcher of a hierarchy. */
export function folderSource(options: FolderSourceOptions): ChangeSource<Snapshot, never> {
  const { http, path } = options;

  async function list(signal: AbortSignal): Promise<SyncObject<AurinkoFolder>[]> {
    const out: SyncObject<AurinkoFolder>[] = [];
    let pageToken: string | undefined;
    do {
      const res = await http.request({
        path,
        query: { pageToken },
        schema: FolderPageSchema,
        endpoint: `aurinko.${path}.list`,
        signal,
      });
      for (const folder of res.body.records) {
        out.push({
          sourcekey: folder.id,
          type: "folder",
          // Lists carry no etag: a digest of the record changes when the record does.
          changeKey: folder.etag === undefined ? digestOf(folder) : String(folder.etag),
          data: folder,
        });
      }
      pageToken = res.body.nextPageToken;
    } while (pageToken !== undefined);
    return out;
  }

  const gone = (sourcekey: string): Change => ({
    kind: "delete",
    object: { sourcekey, type: "folder" },
    soft: false,
  });
  return {
    cursorSchema: z.record(z.string(), z.string()),
    // No tombstones: a folder handed to an importer that failed, then removed before the retry,
    // is found only by verifying what the page delivered.
    reportsByContent: true,
    async fetchPage(req) {
      const listing = await list(req.signal);
      const previous = req.cursor ?? {};
      const snapshot: Snapshot = {};
      const changes: Change[] = [];
      for (const folder of listing) {
        snapshot[folder.sourcekey] = folder.changeKey ?? "";
        changes.push({ kind: "update", object: folder, created: !(folder.sourcekey in previous) });
      }
      for (const key of Object.keys(previous)) if (!(key in snapshot)) changes.push(gone(key));
      return { changes, newCursor: snapshot };
    },
    async verify(keys, req) {
      const now = new Map((await list(req.signal)).map((f) => [f.sourcekey, f]));
      const out: Change[] = [];
      for (const key of keys) {
        const folder = now.get(key);
        if (folder) out.push({ kind: "update", object: folder, created: false });
        else out.push(gone(key));
      }
      return out;
    },
    identity: async (signal) => `aurinko:${await options.accountId(signal)}:/${path}`,
  };
}

function digestOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("base64url").slice(0, 22);
}
