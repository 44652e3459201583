/**
 * The write surface of one mailbox for two-way sync, on the account's main connection.
 * - read flag and flags: `UID STORE … (UNCHANGEDSINCE modseq)`; the server refuses a message
 *   changed since with `OK [MODIFIED uid]` (RFC 7162 §3.1.3), which is a `ConflictError`.
 * - create: APPEND (UIDPLUS `APPENDUID` gives the key, RFC 4315 §3) of the message with a
 *   client-chosen Message-ID, the entry's sourcekey until then; every attempt first searches for
 *   that Message-ID (`UID SEARCH HEADER Message-ID`) and, when the message is there (a replay
 *   after a crash), answers with it: a create never makes a second message.
 * - delete: `+FLAGS (\Deleted)` with `UNCHANGEDSINCE`, then `UID EXPUNGE` of that UID only.
 * - move: the modseq checked by a FETCH, then `UID MOVE` (RFC 6851; COPYUID gives the new key).
 * - update: flags only (a message's content is immutable in IMAP).
 */
import { createHash } from "node:crypto";
import type { FetchMessageObject, ImapFlow, MailboxObject } from "imapflow";
import {
  ArgumentError,
  ConflictError,
  NotFoundError,
  NotSupportedError,
  ProtocolError,
} from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import { stableJson } from "../../src/two-way/log.js";
import type { OutboxEntry, WriteResult, WriteTarget } from "../../src/two-way/types.js";
import type { ImapConnection } from "./imap-connection.js";
import {
  fetchMessages,
  fetchQuery,
  type ImapMessage,
  messageKey,
  toSyncObject,
} from "./imap-messages.js";
import { rawImap } from "./imap-raw.js";

export interface ImapWriteOptions {
  /**
   * Keys of this mailbox's messages as `mailbox/uidvalidity:uid` (as `account.server()` keys
   * them) instead of `uidvalidity:uid` (as `account.folder(path)` does). Default false.
   */
  qualified?: boolean;
}

/** A pending create's key: the Message-ID it is appended with (`<…@…>`). */
const MESSAGE_ID = /^<[^<>\s@]+@[^<>\s@]+>$/;
/** Message content the pull delivers: never written by `update`, compared to refuse a change. */
const CONTENT = ["envelope", "source", "size", "internalDate", "bodyStructure"] as const;

interface Located {
  mailbox: string;
  v: string;
  uid: number;
}

/** The messages of mailbox `path` as a `WriteTarget` (see `account.writeTarget`). */
export function imapWriteTarget(
  connection: ImapConnection,
  path: string,
  options: ImapWriteOptions = {},
): WriteTarget {
  if (!path) throw new ArgumentError("a mailbox path is required");
  const query = fetchQuery(connection.options.fetch ?? "envelope");
  const where = `${connection.label} mailbox "${path}"`;
  const qualifiedFor = (mailbox: string) => options.qualified === true || mailbox !== path;
  const keyOf = (l: Located) =>
    messageKey(l.v, l.uid, qualifiedFor(l.mailbox) ? l.mailbox : undefined);
  const toObject = (mailbox: string, v: string, msg: FetchMessageObject) =>
    toSyncObject(v, mailbox, msg, qualifiedFor(mailbox)) as SyncObject<ImapMessage>;
  const result = (obj: SyncObject<ImapMessage>): WriteResult => ({
    sourcekey: obj.sourcekey,
    ...(obj.changeKey !== undefined ? { changeKey: obj.changeKey } : {}),
    object: obj,
  });

  /** `uidvalidity:uid` (this mailbox) or `mailbox/uidvalidity:uid` (any mailbox). */
  function locate(key: string): Located {
    const match = /^(?:(.+)\/)?(\d+):(\d+)$/.exec(key);
    if (!match) throw new ArgumentError(`${where}: ${JSON.stringify(key)} is not a message key`);
    return { mailbox: match[1] ?? path, v: match[2] as string, uid: Number(match[3]) };
  }

  async function current(client: ImapFlow, uid: number): Promise<FetchMessageObject | undefined> {
    const [msg] = await fetchMessages(client, String(uid), query, undefined, new Set([uid]));
    return msg;
  }

  /** Runs `fn` with the key's mailbox selected and its message there (else `NotFoundError`). */
  function withMessage<R>(
    key: string,
    signal: AbortSignal,
    fn: (client: ImapFlow, box: MailboxObject, l: Located, msg: FetchMessageObject) => Promise<R>,
  ): Promise<R> {
    const l = locate(key);
    return connection.withMailbox(
      l.mailbox,
      async (client, box) => {
        const msg = String(box.uidValidity) === l.v ? await current(client, l.uid) : undefined;
        if (!msg) throw new NotFoundError(`${where}: message ${key} no longer exists`);
        return fn(client, box, l, msg);
      },
      signal,
    );
  }

  /**
   * `UID STORE uid <op> (flags)`, with `UNCHANGEDSINCE changeKey` when given; `[MODIFIED]` is a
   * `ConflictError`. Then the message as it is now (`NotFoundError` when it vanished).
   */
  async function store(
    client: ImapFlow,
    box: MailboxObject,
    l: Located,
    op: string,
    flags: string[],
    changeKey: string | undefined,
  ): Promise<WriteResult> {
    const key = keyOf(l);
    const attributes: unknown[] = [{ type: "SEQUENCE", value: String(l.uid) }];
    if (changeKey !== undefined) {
      if (box.noModseq || !client.enabled.has("CONDSTORE")) {
        throw new NotSupportedError(
          `${where}: a conditional write needs CONDSTORE mod-sequences, which the mailbox lacks`,
        );
      }
      attributes.push([
        { type: "ATOM", value: "UNCHANGEDSINCE" },
        { type: "ATOM", value: changeKey },
      ]);
    }
    attributes.push(
      { type: "ATOM", value: op },
      flags.map((value) => ({ type: "ATOM", value })),
    );
    const code = await (await rawImap(client)).tagged("UID STORE", attributes);
    if (code[0] === "MODIFIED") {
      throw new ConflictError(`${where}: message ${key} changed since mod-sequence ${changeKey}`);
    }
    const msg = await current(client, l.uid);
    if (!msg) throw new NotFoundError(`${where}: message ${key} no longer exists`);
    return result(toObject(l.mailbox, l.v, msg));
  }

  /** The message with the lowest UID carrying `messageId` in `mailbox` (selected). */
  async function findCreated(
    client: ImapFlow,
    box: MailboxObject,
    mailbox: string,
    messageId: string,
  ) {
    const found = await client.search({ header: { "message-id": messageId } }, { uid: true });
    if (!found) throw new ProtocolError(where, "UID SEARCH HEADER Message-ID failed");
    for (const uid of [...found].sort((a, b) => a - b)) {
      const msg = await current(client, uid);
      // SEARCH HEADER matches substrings (RFC 3501 §6.4.4): check the whole id.
      if (msg && sameId(msg.envelope?.messageId, messageId)) {
        return toObject(mailbox, String(box.uidValidity), msg);
      }
    }
    return undefined;
  }

  /** The message a key (or a pending create's Message-ID) names, undefined when gone. */
  async function fetchKey(
    key: string,
    signal: AbortSignal,
  ): Promise<SyncObject<ImapMessage> | undefined> {
    try {
      if (MESSAGE_ID.test(key)) {
        return await connection.withMailbox(
          path,
          (c, box) => findCreated(c, box, path, key),
          signal,
        );
      }
      return await withMessage(key, signal, async (_c, _b, l, msg) =>
        toObject(l.mailbox, l.v, msg),
      );
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  return {
    id: `imap:${connection.label}/${path}`,
    keyFor: (localId) =>
      `<ds.${createHash("sha256").update(localId).digest("hex").slice(0, 32)}@deltasync.invalid>`,
    async create(e, { signal }) {
      if (!MESSAGE_ID.test(e.sourcekey)) {
        throw new ArgumentError(`${where}: a create's sourcekey must be a Message-ID from keyFor`);
      }
      const mailbox = e.parentKey ?? path;
      const data = messageData(e.data, where);
      if (data.source === undefined) {
        throw new ArgumentError(`${where}: a create's data needs the message (source, base64)`);
      }
      const raw = withMessageId(Buffer.from(data.source, "base64"), e.sourcekey);
      return connection.withMailbox(
        mailbox,
        async (client, box) => {
          // A replay after a crash between the APPEND and the outbox's commit (or a retry after
          // a dropped connection): the message carrying this Message-ID is ours, already there.
          const ours = await findCreated(client, box, mailbox, e.sourcekey);
          if (ours) return result(ours);
          const flags = [...(data.flags ?? []), ...(data.seen ? ["\\Seen"] : [])];
          const date = data.internalDate !== undefined ? new Date(data.internalDate) : undefined;
          const appended = await client.append(mailbox, raw, flags, date);
          if (!appended || appended.uid === undefined) {
            throw new ProtocolError(where, "APPEND gave no UID (the server lacks UIDPLUS)");
          }
          const v = String(appended.uidValidity ?? box.uidValidity);
          const msg = await current(client, appended.uid);
          if (!msg) throw new NotFoundError(`${where}: the appended message vanished`);
          return result(toObject(mailbox, v, msg));
        },
        signal,
      );
    },
    async update(e, { signal }) {
      const data = messageData(e.data, where);
      return withMessage(e.sourcekey, signal, async (client, box, l, msg) => {
        const now = toObject(l.mailbox, l.v, msg).data;
        for (const field of CONTENT) {
          const want = data[field];
          if (
            want !== undefined &&
            now[field] !== undefined &&
            !sameContent(field, want, now[field])
          ) {
            throw new NotSupportedError(
              `${where}: IMAP messages are immutable: an update may change flags only (${field} differs)`,
            );
          }
        }
        const flags = [
          ...(data.flags ?? now.flags),
          ...((data.seen ?? now.seen) ? ["\\Seen"] : []),
        ];
        return store(client, box, l, "FLAGS.SILENT", flags, e.changeKey);
      });
    },
    async read(e, { signal }) {
      return withMessage(e.sourcekey, signal, (client, box, l) =>
        store(
          client,
          box,
          l,
          e.isRead ? "+FLAGS.SILENT" : "-FLAGS.SILENT",
          ["\\Seen"],
          e.changeKey,
        ),
      );
    },
    async delete(e, { signal }) {
      await withMessage(e.sourcekey, signal, async (client, box, l, msg) => {
        if (!client.capabilities.has("UIDPLUS")) {
          // A plain EXPUNGE would remove every \Deleted message of the mailbox, not just ours.
          throw new NotSupportedError(`${where}: deleting needs UID EXPUNGE (UIDPLUS)`);
        }
        // Already marked \Deleted (by us before a crash, or by anyone): only the expunge is left.
        if (!msg.flags?.has("\\Deleted")) {
          await store(client, box, l, "+FLAGS.SILENT", ["\\Deleted"], e.changeKey);
        }
        await (await rawImap(client)).tagged("UID EXPUNGE", [
          { type: "SEQUENCE", value: String(l.uid) },
        ]);
      });
    },
    async move(e, { signal }) {
      const moved = await withMessage(e.sourcekey, signal, async (client, _box, l, msg) => {
        if (l.mailbox === e.parentKey) return { mailbox: l.mailbox, v: l.v, uid: l.uid };
        // MOVE takes no UNCHANGEDSINCE: the version is checked just before (one round trip).
        if (e.changeKey !== undefined && BigInt(String(msg.modseq ?? 0)) > BigInt(e.changeKey)) {
          throw new ConflictError(`${where}: message ${e.sourcekey} changed since ${e.changeKey}`);
        }
        const res = await client.messageMove(String(l.uid), e.parentKey, { uid: true });
        const uid = res ? res.uidMap?.get(l.uid) : undefined;
        if (!res || uid === undefined || res.uidValidity === undefined) {
          throw new ProtocolError(where, `UID MOVE to "${e.parentKey}" gave no COPYUID`);
        }
        return { mailbox: e.parentKey, v: String(res.uidValidity), uid };
      });
      const key = keyOf(moved);
      const obj = await fetchKey(key, signal);
      return obj ? result(obj) : { sourcekey: key };
    },
    fetch: (key, { signal }) => fetchKey(key, signal),
    applied(e: OutboxEntry, remote) {
      const have = remote.data as ImapMessage;
      switch (e.kind) {
        case "create":
          return sameId(have.envelope?.messageId, e.sourcekey);
        case "update": {
          const data = messageData(e.data, where);
          return (
            (data.seen === undefined || data.seen === have.seen) &&
            (data.flags === undefined || same([...data.flags].sort(), have.flags))
          );
        }
        case "read":
          return have.seen === e.isRead;
        case "move":
          return remote.parentKey === e.parentKey;
        case "delete":
          return false;
      }
    },
    // IMAP keeps no modification time (INTERNALDATE is the arrival time): newest-wins asks.
    modifiedAt: () => undefined,
  };
}

/** The entry's data as a message (the shape the pull delivers); bad shapes are `ArgumentError`. */
function messageData(data: unknown, where: string): Partial<ImapMessage> {
  const d = data as Partial<ImapMessage> | null;
  if (
    d === null ||
    typeof d !== "object" ||
    Array.isArray(d) ||
    (d.flags !== undefined &&
      !(Array.isArray(d.flags) && d.flags.every((f) => typeof f === "string"))) ||
    (d.seen !== undefined && typeof d.seen !== "boolean") ||
    (d.source !== undefined && typeof d.source !== "string")
  ) {
    throw new ArgumentError(`${where}: entry data must be a message ({ flags?, seen?, source? })`);
  }
  return d;
}

const same = (a: unknown, b: unknown) => stableJson(a) === stableJson(b);

/**
 * Equal content, the Message-ID aside (a create writes its own, so a re-created message differs
 * from the data it was made from in that header only).
 */
function sameContent(field: (typeof CONTENT)[number], a: unknown, b: unknown): boolean {
  if (field === "source" && typeof a === "string" && typeof b === "string") {
    const norm = (s: string) => withMessageId(Buffer.from(s, "base64"), "<x@x>").toString("base64");
    return norm(a) === norm(b);
  }
  if (field === "envelope" && a && b && typeof a === "object" && typeof b === "object") {
    return same({ ...a, messageId: undefined }, { ...b, messageId: undefined });
  }
  // The size of a re-created message differs by its Message-ID header's length.
  return field === "size" || same(a, b);
}

function sameId(have: string | undefined, want: string): boolean {
  const bare = (id: string) => id.trim().replace(/^<|>$/g, "").toLowerCase();
  return have !== undefined && bare(have) === bare(want);
}

/** The message with its Message-ID header replaced by `messageId` (RFC 5322 §3.6.4). */
export function withMessageId(raw: Buffer, messageId: string): Buffer {
  const text = raw.toString("latin1");
  const end = /\r?\n\r?\n/.exec(text);
  const head = end ? text.slice(0, end.index) : text;
  const rest = end ? text.slice(end.index) : "\r\n\r\n";
  // A header field runs on over lines starting with white space (RFC 5322 §2.2.3).
  const fields = head.split(/\r?\n(?![ \t])/).filter((f) => f && !/^message-id\s*:/i.test(f));
  return Buffer.from([`Message-ID: ${messageId}`, ...fields].join("\r\n") + rest, "latin1");
}
