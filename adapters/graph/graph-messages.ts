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
import type { DeltaItem, GraphMessage } from "./schemas.js";

/**
 * The default `$select` of messages: what a mail list shows and a mirror needs to thread,
 * flag and file a message. No `body` (fetch it on demand) and no attachments.
 */
export const DEFAULT_MESSAGE_SELECT: readonly string[] = [
  "subject",
  "from",
  "toRecipients",
  "ccRecipients",
  "receivedDateTime",
  "sentDateTime",
  "isRead",
  "isDraft",
  "flag",
  "importance",
  "hasAttachments",
  "bodyPreview",
  "conversationId",
  "internetMessageId",
  "categories",
  "parentFolderId",
  "changeKey",
];

export interface MessagesSourceOptions {
  http: HttpClient;
  /** `me` or `users/{id}`. */
  user: string;
  folderId: string;
  select: readonly string[];
  prefer: string;
  /** Resolve `@removed` with a GET (server-wide scope) instead of reporting a delete. */
  resolveRemoved: boolean;
  /** GETs in flight per page (the account's limiter caps the total anyway). */
  concurrency: number;
}

/** Fields of a delta item that are not properties of the object. */
const META = (key: string) => key === "id" || key === "changeKey" || key.startsWith("@");

/** True for an update that changed the read flag only (`{ id, isRead }` and metadata). */
export function isReadOnly(item: DeltaItem): boolean {
  const props = Object.keys(item).filter((k) => !META(k));
  return props.length === 1 && props[0] === "isRead" && typeof item.isRead === "boolean";
}

/** True when an item lacks a selected property: a sparse update that must be fetched whole. */
export function isSparse(item: DeltaItem, select: readonly string[]): boolean {
  return select.some((field) => !(field in item));
}

/** The page fetcher of one mail folder's messages. */
export function messagesSource(options: MessagesSourceOptions): ChangeSource<DeltaLink, DeltaLink> {
  const { http, user, folderId, select, prefer } = options;
  const selectParam = select.length ? ["id", ...select].join(",") : undefined;

  const fetchMessage = async (id: string, signal: AbortSignal) =>
    (await getObject(
      http,
      {
        path: `${user}/messages/${encodeURIComponent(id)}`,
        query: { $select: selectParam },
        prefer,
        endpoint: "graph.messages.get",
      },
      signal,
    )) as GraphMessage | undefined;

  /** The message as it is now, seen from this folder. */
  const current = async (id: string, signal: AbortSignal, resolve: boolean): Promise<Change> => {
    const message = await fetchMessage(id, signal);
    const parent = message?.parentFolderId;
    if (!message || (parent !== undefined && parent !== folderId && !resolve))
      return graphDelete("item", id, folderId);
    if (parent !== undefined && parent !== folderId)
      return {
        kind: "move",
        object: graphObject("item", message, parent),
        fromParentKey: folderId,
      };
    return { kind: "update", object: graphObject("item", message, folderId), created: false };
  };

  return resolvingDeltaSource({
    http,
    endpoint: "graph.messages.delta",
    prefer,
    concurrency: options.concurrency,
    resolveRemoved: options.resolveRemoved,
    current,
    start: () => ({
      path: `${user}/mailFolders/${encodeURIComponent(folderId)}/messages/delta`,
      query: { $select: selectParam },
    }),
    mapItem: (item, { incremental }) => {
      if (isRemoved(item))
        return options.resolveRemoved ? undefined : graphDelete("item", item.id, folderId);
      if (incremental && isReadOnly(item)) {
        return {
          kind: "read",
          object: { sourcekey: item.id, parentKey: folderId },
          isRead: item.isRead as boolean,
        };
      }
      if (isSparse(item, select)) return undefined;
      return {
        kind: "update",
        object: graphObject("item", item as GraphMessage, folderId),
        created: !incremental,
      };
    },
  });
}
