import type { ChangeSource } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import {
  type DeltaLink,
  getObject,
  graphDelete,
  graphObject,
  isRemoved,
  resolvingDeltaSource,
} from "./graph-delta.js";
import { isSparse } from "./graph-messages.js";
import type { GraphContact } from "./schemas.js";

/** The key of the default contacts folder (it is not listed by `contactFolders`). */
export const DEFAULT_CONTACT_FOLDER = "default";

/** The default `$select` of contacts. */
export const DEFAULT_CONTACT_SELECT: readonly string[] = [
  "displayName",
  "givenName",
  "surname",
  "emailAddresses",
  "businessPhones",
  "homePhones",
  "mobilePhone",
  "companyName",
  "jobTitle",
  "parentFolderId",
  "changeKey",
];

export interface ContactsSourceOptions {
  http: HttpClient;
  user: string;
  folderKey: string;
  select: readonly string[];
  prefer: string;
  /** Resolve `@removed` with a GET (moves between folders inside `contacts()`). */
  resolveRemoved: boolean;
  concurrency: number;
  /**
   * The folder key of a contact's `parentFolderId`: the default folder has a real id that
   * `contactFolders` never lists, so the account maps ids it does not know (after refreshing the
   * folder list) to `default`.
   */
  keyOf(parentFolderId: string, signal: AbortSignal): Promise<string>;
}

/** The page fetcher of one contact folder. */
export function contactsSource(options: ContactsSourceOptions): ChangeSource<DeltaLink, DeltaLink> {
  const { http, user, folderKey, select, prefer } = options;
  const selectParam = select.length ? ["id", ...select].join(",") : undefined;
  const path =
    folderKey === DEFAULT_CONTACT_FOLDER
      ? `${user}/contacts/delta`
      : `${user}/contactFolders/${encodeURIComponent(folderKey)}/contacts/delta`;

  /** The contact now, seen from this folder; another folder's contact is a move or a delete. */
  const current = async (id: string, signal: AbortSignal, resolve: boolean): Promise<Change> => {
    const contact = (await getObject(
      http,
      {
        path: `${user}/contacts/${encodeURIComponent(id)}`,
        query: { $select: selectParam },
        prefer,
        endpoint: "graph.contacts.get",
      },
      signal,
    )) as GraphContact | undefined;
    const parent = contact?.parentFolderId;
    const here = typeof parent === "string" ? await options.keyOf(parent, signal) : folderKey;
    if (!contact || (here !== folderKey && !resolve)) return graphDelete("user", id, folderKey);
    if (here !== folderKey)
      return { kind: "move", object: graphObject("user", contact, here), fromParentKey: folderKey };
    return { kind: "update", object: graphObject("user", contact, folderKey), created: false };
  };

  return resolvingDeltaSource({
    http,
    endpoint: "graph.contacts.delta",
    prefer,
    concurrency: options.concurrency,
    resolveRemoved: options.resolveRemoved,
    current,
    start: () => ({ path, query: { $select: selectParam } }),
    mapItem: (item, { incremental }) => {
      const removed = isRemoved(item);
      if ((removed && options.resolveRemoved) || (!removed && isSparse(item, select)))
        return undefined;
      if (removed) return graphDelete("user", item.id, folderKey);
      return {
        kind: "update",
        object: graphObject("user", item as GraphContact, folderKey),
        created: !incremental,
      };
    },
  });
}
