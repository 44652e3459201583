/**
 * Folder hierarchies: `mailFolders/delta` and `contactFolders/delta` (PROTOCOLS.md §2.1). Both
 * come back flat, child folders included, each with its `parentFolderId`.
 */
import { NotFoundError } from "../../src/core/errors.js";
import type { ChangeSource } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { type DeltaLink, deltaSource, isRemoved, mapLimited } from "./graph-delta.js";
import { DeltaItemSchema, type GraphFolder } from "./schemas.js";

export interface FoldersSourceOptions {
  http: HttpClient;
  user: string;
  /** `mailFolders` or `contactFolders`. */
  kind: "mailFolders" | "contactFolders";
  prefer: string;
  concurrency: number;
}

/** The page fetcher of a folder hierarchy. */
export function foldersSource(options: FoldersSourceOptions): ChangeSource<DeltaLink, DeltaLink> {
  const { http, user, kind, prefer } = options;
  /** The folder as it is now (`404` → deleted). */
  const current = async (id: string, signal: AbortSignal): Promise<Change> => {
    try {
      const res = await http.request({
        path: `${user}/${kind}/${encodeURIComponent(id)}`,
        headers: { prefer },
        schema: DeltaItemSchema,
        endpoint: `graph.${kind}.get`,
        signal,
      });
      return folderChange(res.body as GraphFolder, false);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      return folderChange({ id, "@removed": { reason: "deleted" } }, false);
    }
  };
  return {
    ...deltaSource({
      http,
      endpoint: `graph.${kind}.delta`,
      prefer,
      start: () => ({ path: `${user}/${kind}/delta` }),
      map: (items, { incremental }) =>
        items.map((item) => folderChange(item as GraphFolder, !incremental)),
    }),
    verify: (keys, req) => mapLimited(keys, options.concurrency, (id) => current(id, req.signal)),
  };
}

function folderChange(folder: GraphFolder, created: boolean): Change<GraphFolder> {
  if (isRemoved(folder))
    return { kind: "delete", object: { sourcekey: folder.id, type: "folder" }, soft: false };
  return {
    kind: "update",
    object: {
      sourcekey: folder.id,
      type: "folder",
      parentKey: typeof folder.parentFolderId === "string" ? folder.parentFolderId : undefined,
      changeKey: typeof folder.changeKey === "string" ? folder.changeKey : undefined,
      data: folder,
    },
    created,
  };
}
