/**
 * Contacts of one contact folder (`contactFolders/{id}/contacts/delta`); the default folder is
 * `contacts/delta` (key `default`). `@removed` → delete; a sparse update is fetched whole.
 */
import { NotFoundError } from "../../src/core/errors.js";
import type { ChangeSource, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { type DeltaLink, deltaSource, isRemoved, mapLimited } from "./graph-delta.js";
import { isSparse } from "./graph-messages.js";
import { DeltaItemSchema, type GraphContact } from "./schemas.js";

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
    let contact: GraphContact | undefined;
    try {
      const res = await http.request({
        path: `${user}/contacts/${encodeURIComponent(id)}`,
        query: { $select: selectParam },
        headers: { prefer },
        schema: DeltaItemSchema,
        endpoint: "graph.contacts.get",
        signal,
      });
      contact = res.body as GraphContact;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    const parent = contact?.parentFolderId;
    const here = typeof parent === "string" ? await options.keyOf(parent, signal) : folderKey;
    if (!contact || (here !== folderKey && !resolve)) return contactDelete(id, folderKey);
    if (here !== folderKey)
      return { kind: "move", object: contactObject(contact, here), fromParentKey: folderKey };
    return { kind: "update", object: contactObject(contact, folderKey), created: false };
  };

  const source = deltaSource({
    http,
    endpoint: "graph.contacts.delta",
    prefer,
    start: () => ({ path, query: { $select: selectParam } }),
    map: async (items, { incremental, signal }) => {
      const pending: { index: number; id: string }[] = [];
      const changes: (Change | undefined)[] = items.map((item, index) => {
        const removed = isRemoved(item);
        if ((removed && options.resolveRemoved) || (!removed && isSparse(item, select))) {
          pending.push({ index, id: item.id });
          return undefined;
        }
        if (removed) return contactDelete(item.id, folderKey);
        return {
          kind: "update",
          object: contactObject(item as GraphContact, folderKey),
          created: !incremental,
        };
      });
      const resolved = await mapLimited(pending, options.concurrency, (p) =>
        current(p.id, signal, options.resolveRemoved),
      );
      pending.forEach((p, i) => {
        changes[p.index] = resolved[i];
      });
      return changes as Change[];
    },
  });
  return {
    ...source,
    verify: (keys: string[], req: PageRequest<DeltaLink, DeltaLink>) =>
      mapLimited(keys, options.concurrency, (id) => current(id, req.signal, false)),
  } as ChangeSource<DeltaLink, DeltaLink>;
}

function contactObject(contact: GraphContact, folderKey: string) {
  return {
    sourcekey: contact.id,
    type: "user" as const,
    parentKey: folderKey,
    changeKey: typeof contact.changeKey === "string" ? contact.changeKey : undefined,
    data: contact,
  };
}

function contactDelete(id: string, folderKey: string): Change {
  return {
    kind: "delete",
    object: { sourcekey: id, type: "user", parentKey: folderKey },
    soft: false,
  };
}
