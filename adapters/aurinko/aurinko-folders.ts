/**
 * The calendar list (`GET /calendars`) and the task lists (`GET /tasklists`) as hierarchies.
 * Aurinko has no delta stream for them: each round lists every page and diffs the listing
 * against the previous one (the snapshot source of the core).
 */
import { createHash } from "node:crypto";
import { diffSnapshot, type Snapshot, snapshotSource } from "../../src/core/snapshot.js";
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

  const base = snapshotSource<AurinkoFolder>({ type: "folder", list: (req) => list(req.signal) });
  return {
    ...base,
    async verify(keys, req) {
      const now = new Map((await list(req.signal)).map((f) => [f.sourcekey, f]));
      const out: Change[] = [];
      for (const key of keys) {
        const folder = now.get(key);
        if (folder) out.push({ kind: "update", object: folder, created: false });
        else out.push(diffSnapshot({ [key]: "" }, [], "folder").changes[0] as Change);
      }
      return out;
    },
    identity: async (signal) => `aurinko:${await options.accountId(signal)}:/${path}`,
  };
}

function digestOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("base64url").slice(0, 22);
}
