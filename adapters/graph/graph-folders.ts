/**
 * Folder hierarchies: `mailFolders/delta` and `contactFolders/delta` (PROTOCOLS.md §2.1). Both
 * come back flat, child folders included, each with its `parentFolderId`.
 */
import type { ChangeSource } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { type DeltaLink, deltaSource, isRemoved } from "./graph-delta.js";
import type { GraphFolder } from "./schemas.js";

export interface FoldersSourceOptions {
  http: HttpClient;
  user: string;
  /** `mailFolders` or `contactFolders`. */
  kind: "mailFolders" | "contactFolders";
  prefer: string;
}

/** The page fetcher of a folder hierarchy. */
export function foldersSource(options: FoldersSourceOptions): ChangeSource<DeltaLink, DeltaLink> {
  const { http, user, kind, prefer } = options;
  return deltaSource({
    http,
    endpoint: `graph.${kind}.delta`,
    prefer,
    start: () => ({ path: `${user}/${kind}/delta` }),
    map: (items, { incremental }) =>
      items.map((item) => folderChange(item as GraphFolder, !incremental)),
  });
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
