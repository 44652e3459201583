/**
 * Gmail as one mail folder (PROTOCOLS.md §1.4): a full sync lists messages (bounded by
 * `daysWithin`) after recording the mailbox `historyId`; then `history.list` rounds from it.
 */
import { z } from "zod";
import type { Page, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { mapLimit, unlessMissing, type VerifyingSource } from "./google-shared.js";
import {
  type GmailHistoryRecord,
  type GmailMessage,
  HistoryPageSchema,
  MessageSchema,
  MessagesListSchema,
  ProfileSchema,
} from "./schemas.js";

export const GmailCursorSchema = z.object({ historyId: z.string().min(1) });
export type GmailCursor = z.infer<typeof GmailCursorSchema>;

/**
 * Mid-round position: during a full sync `h` is the historyId recorded before listing; `t` the
 * page token (absent: the first page of a history delta from the cursor, the follow-up).
 */
export const GmailPageSchema = z.object({
  h: z.string().min(1).optional(),
  t: z.string().min(1).optional(),
});
export type GmailPage = z.infer<typeof GmailPageSchema>;

/** The folder key of the mailbox in changes (Gmail has labels, not folders). */
export const MAILBOX_KEY = "gmail:me";

export interface GmailSourceOptions {
  http: HttpClient;
  /** `messages.list` / `history.list` `maxResults` (caps 500). */
  pageSize: number;
  /** Parallel `messages.get` calls per page (Gmail allows about 10 concurrent per user). */
  concurrency: number;
  /** The account the token belongs to (part of the identity written into states). */
  account: (signal: AbortSignal) => Promise<string>;
}

/** The page fetcher of the mailbox. */
export function gmailSource(options: GmailSourceOptions): VerifyingSource<GmailCursor, GmailPage> {
  const { http, concurrency } = options;
  const pageSize = Math.min(options.pageSize, 500);

  /** The message as it is now; `undefined` once deleted (404). */
  async function getMessage(id: string, signal: AbortSignal): Promise<GmailMessage | undefined> {
    const res = await unlessMissing(
      http.request({
        path: `users/me/messages/${encodeURIComponent(id)}`,
        query: { format: "metadata", metadataHeaders: ["Subject", "From", "Date"] },
        schema: MessageSchema,
        endpoint: "gmail.messages.get",
        signal,
      }),
    );
    return res?.body;
  }

  async function fetchAll(
    ids: string[],
    signal: AbortSignal,
  ): Promise<Map<string, GmailMessage | undefined>> {
    const unique = [...new Set(ids)];
    const found = await mapLimit(unique, concurrency, (id) => getMessage(id, signal));
    return new Map(unique.map((id, i) => [id, found[i]]));
  }

  async function fullPage(
    req: PageRequest<GmailCursor, GmailPage>,
  ): Promise<Page<GmailCursor, GmailPage>> {
    const h = req.page?.h;
    if (h === undefined) {
      // Record the mailbox historyId BEFORE listing, so nothing between list and history is
      // missed, as a page of its own: a round stopped inside the first listing page resumes with
      // this `h`, not a newer one, and the history that follows names what a crashed batch had
      // applied and was deleted since (the new listing no longer does).
      const profile = await http.request({
        path: "users/me/profile",
        schema: ProfileSchema,
        endpoint: "gmail.users.getProfile",
        signal: req.signal,
      });
      return { changes: [], nextPage: { h: profile.body.historyId } };
    }
    const days = req.window?.daysWithin;
    const res = await http.request({
      path: "users/me/messages",
      query: {
        maxResults: pageSize,
        pageToken: req.page?.t,
        q: days ? `newer_than:${days}d` : undefined,
        // Trash and spam are labels, not deletions: history reports them, so the listing must too.
        includeSpamTrash: true,
      },
      schema: MessagesListSchema,
      endpoint: "gmail.messages.list",
      signal: req.signal,
    });
    const ids = res.body.messages.map((m) => m.id);
    const fetched = await fetchAll(ids, req.signal);
    const changes: Change<GmailMessage>[] = [];
    for (const id of ids) {
      // Deleted since the listing: a delete keeps one change per listed id (pages stay repeatable).
      const message = fetched.get(id);
      changes.push(message ? messageUpdate(message, true) : messageDelete(id));
    }
    if (res.body.nextPageToken !== undefined)
      return { changes, nextPage: { h, t: res.body.nextPageToken } };
    // The listing shows the mailbox as of its first page (possibly a round resumed much later),
    // and `h` is older still: history from `h` follows in the same round (see followUp).
    return { changes, newCursor: { historyId: h }, nextPage: {} };
  }

  async function historyPage(
    req: PageRequest<GmailCursor, GmailPage>,
    cursor: GmailCursor,
  ): Promise<Page<GmailCursor, GmailPage>> {
    const res = await http.request({
      path: "users/me/history",
      query: {
        startHistoryId: cursor.historyId,
        historyTypes: ["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"],
        maxResults: pageSize,
        pageToken: req.page?.t,
      },
      schema: HistoryPageSchema,
      endpoint: "gmail.history.list",
      signal: req.signal,
    });
    const records = res.body.history;
    const fetched = await fetchAll(idsToFetch(records), req.signal);
    const changes = records.flatMap((r) => historyChanges(r, fetched));
    if (res.body.nextPageToken !== undefined)
      return { changes, nextPage: { t: res.body.nextPageToken } };
    // The mailbox's current historyId is the next startHistoryId once the last page is read.
    return {
      changes,
      newCursor: { historyId: res.body.historyId },
      nextPage: req.page?.t ? {} : undefined,
    };
  }

  return {
    cursorSchema: GmailCursorSchema,
    pageSchema: GmailPageSchema,
    fetchPage: (req) => (req.cursor === undefined ? fullPage(req) : historyPage(req, req.cursor)),
    async identity(signal) {
      return `${await options.account(signal)} mail`;
    },
    /** `messages.get` (the same format as the pages): 404 → delete, else its labels and snippet. */
    async verify(keys, req) {
      const fetched = await fetchAll(keys, req.signal);
      return keys.map((id) => {
        const message = fetched.get(id);
        return message ? messageUpdate(message, false) : messageDelete(id);
      });
    },
  };
}

/** Messages whose current version the page needs: added ones, and ones whose labels changed. */
function idsToFetch(records: GmailHistoryRecord[]): string[] {
  const ids: string[] = [];
  for (const r of records) {
    for (const a of r.messagesAdded ?? []) ids.push(a.message.id);
    for (const l of [...(r.labelsAdded ?? []), ...(r.labelsRemoved ?? [])]) {
      if (l.labelIds.some((x) => x !== "UNREAD")) ids.push(l.message.id);
    }
  }
  return ids;
}

/** The changes of one history record, in the record's order. */
function historyChanges(
  record: GmailHistoryRecord,
  fetched: Map<string, GmailMessage | undefined>,
): Change<GmailMessage>[] {
  const out: Change<GmailMessage>[] = [];
  const updated = (id: string, created: boolean) => {
    const message = fetched.get(id);
    out.push(message ? messageUpdate(message, created) : messageDelete(id));
  };
  for (const a of record.messagesAdded ?? []) updated(a.message.id, true);
  for (const d of record.messagesDeleted ?? []) out.push(messageDelete(d.message.id));
  for (const [list, unread] of [
    [record.labelsAdded, true],
    [record.labelsRemoved, false],
  ] as const) {
    for (const l of list ?? []) {
      // Marking read removes UNREAD; marking unread adds it.
      if (l.labelIds.includes("UNREAD")) {
        out.push({
          kind: "read",
          object: { sourcekey: l.message.id, parentKey: MAILBOX_KEY },
          isRead: !unread,
        });
      }
      if (l.labelIds.some((x) => x !== "UNREAD")) updated(l.message.id, false);
    }
  }
  return out;
}

function messageUpdate(message: GmailMessage, created: boolean): Change<GmailMessage> {
  return {
    kind: "update",
    object: {
      sourcekey: message.id,
      type: "item",
      parentKey: MAILBOX_KEY,
      changeKey: message.historyId,
      data: message,
    },
    created,
  };
}

function messageDelete(id: string): Change<GmailMessage> {
  return {
    kind: "delete",
    object: { sourcekey: id, type: "item", parentKey: MAILBOX_KEY },
    soft: false,
  };
}
