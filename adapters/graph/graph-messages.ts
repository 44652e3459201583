/**
 * Messages of one mail folder (`mailFolders/{id}/messages/delta`, PROTOCOLS.md §2.1): `@removed`
 * → delete, an update that carries only `isRead` → `read()`, any other sparse update → the
 * message is fetched whole, never handed to the importer half empty.
 *
 * With `Prefer: IdType="ImmutableId"` a message keeps its id when it moves. A folder's delta
 * reports a move out as `@removed`; inside the server-wide scope that removal is resolved with a
 * GET, so the importer sees a `move` to the new folder (or the delete when it is really gone)
 * instead of losing a message that an earlier folder of the same round already delivered.
 */
import { NotFoundError } from "../../src/core/errors.js";
import type { ChangeSource, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { type DeltaLink, deltaSource, isRemoved, mapLimited } from "./graph-delta.js";
import { type DeltaItem, DeltaItemSchema, type GraphMessage } from "./schemas.js";

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

  const fetchMessage = async (id: string, signal: AbortSignal) => {
    try {
      const res = await http.request({
        path: `${user}/messages/${encodeURIComponent(id)}`,
        query: { $select: selectParam },
        headers: { prefer },
        schema: DeltaItemSchema,
        endpoint: "graph.messages.get",
        signal,
      });
      return res.body as GraphMessage;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  };

  /** The message as it is now, seen from this folder. */
  const current = async (id: string, signal: AbortSignal, resolve: boolean): Promise<Change> => {
    const message = await fetchMessage(id, signal);
    const parent = message?.parentFolderId;
    if (!message || (parent !== undefined && parent !== folderId && !resolve))
      return messageDelete(id, folderId);
    if (parent !== undefined && parent !== folderId)
      return { kind: "move", object: messageObject(message, parent), fromParentKey: folderId };
    return { kind: "update", object: messageObject(message, folderId), created: false };
  };

  const source = deltaSource({
    http,
    endpoint: "graph.messages.delta",
    prefer,
    start: () => ({
      path: `${user}/mailFolders/${encodeURIComponent(folderId)}/messages/delta`,
      query: { $select: selectParam },
    }),
    map: async (items, { incremental, signal }) => {
      const pending: { index: number; id: string }[] = [];
      const changes: (Change | undefined)[] = items.map((item, index) => {
        if (isRemoved(item)) {
          if (!options.resolveRemoved) return messageDelete(item.id, folderId);
          pending.push({ index, id: item.id });
          return undefined;
        }
        if (incremental && isReadOnly(item)) {
          return {
            kind: "read",
            object: { sourcekey: item.id, parentKey: folderId },
            isRead: item.isRead as boolean,
          };
        }
        if (isSparse(item, select)) {
          pending.push({ index, id: item.id });
          return undefined;
        }
        return {
          kind: "update",
          object: messageObject(item as GraphMessage, folderId),
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
    // Keys the engine's delivered set can no longer find in the re-fetched page.
    verify: (keys: string[], req: PageRequest<DeltaLink, DeltaLink>) =>
      mapLimited(keys, options.concurrency, (id) => current(id, req.signal, false)),
  } as ChangeSource<DeltaLink, DeltaLink>;
}

function messageObject(message: GraphMessage, folderId: string) {
  return {
    sourcekey: message.id,
    type: "item" as const,
    parentKey: folderId,
    changeKey: typeof message.changeKey === "string" ? message.changeKey : undefined,
    data: message,
  };
}

function messageDelete(id: string, folderId: string): Change {
  return {
    kind: "delete",
    object: { sourcekey: id, type: "item", parentKey: folderId },
    soft: false,
  };
}
