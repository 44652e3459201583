/**
 * `folder.sync` for one mailbox: a `ChangeSource` keyed on `uidvalidity:uid`.
 *
 * The cursor holds UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT and every known UID with its flags as
 * compact ranges. Every page is a diff against that table, so re-fetching a page after a
 * `maxChanges` stop or a dropped connection re-reports nothing already imported.
 * - QRESYNC: `UID FETCH 1:4294967295 (FLAGS) (CHANGEDSINCE m VANISHED)` (RFC 7162 §3.2.6).
 * - CONDSTORE: the same without VANISHED, plus `UID SEARCH ALL` diffed for expunges.
 * - neither (or NOMODSEQ at full sync): `UID FETCH 1:* (FLAGS)` diffed (O(mailbox), slow).
 */
import type { FetchMessageObject, ImapFlow, MailboxObject } from "imapflow";
import { ProtocolError, StateError, StateInvalidError } from "../../src/core/errors.js";
import type { ChangeSource, Page, PageRequest } from "../../src/core/source.js";
import type { Change, SyncWindow } from "../../src/core/types.js";
import { freshStatus, type ImapConnection } from "./imap-connection.js";
import {
  fetchMessages,
  fetchQuery,
  isSeen,
  messageKey,
  onlySeenDiffers,
  signature,
  toSyncObject,
} from "./imap-messages.js";
import {
  applyOps,
  decodeKnown,
  encodeKnown,
  fromRanges,
  type Known,
  type Op,
  splitChunk,
  toRanges,
} from "./imap-uidset.js";
import {
  type MailboxCursor,
  type MailboxPage,
  mailboxCursorSchema,
  mailboxPageSchema,
} from "./schemas.js";

const ALL_UIDS = "1:4294967295"; // not `1:*`: Cyrus may omit VANISHED UIDs above the highest existing

function modseqOf(box: MailboxObject, plain: boolean): string | undefined {
  if (plain || box.noModseq || !box.highestModseq) return undefined;
  return String(box.highestModseq);
}

export interface MailboxSourceOptions {
  connection: ImapConnection;
  path: string;
  /** Keys as `mailbox/uidvalidity:uid` (the server-wide scope). */
  qualified?: boolean;
}

export function mailboxSource(
  options: MailboxSourceOptions,
): ChangeSource<MailboxCursor, MailboxPage> {
  const { connection, path } = options;
  const scoped = options.qualified ? path : undefined;
  const opts = connection.options;
  const mode = opts.mode ?? "auto";
  const plain = mode === "plain";
  const chunkSize = opts.chunkSize ?? 500;
  const query = fetchQuery(opts.fetch ?? "envelope");
  const where = `${connection.label} mailbox "${path}"`;

  /** Diffs fetched messages against `known` into changes (and the ops that record them). */
  function diff(
    v: string,
    msgs: FetchMessageObject[],
    known: Known,
    ops: Op[],
    changes: Change[],
    onlyKnown: boolean,
  ): number[] {
    const needFetch: number[] = [];
    for (const msg of msgs) {
      const sig = signature(msg.flags);
      const before = known.get(msg.uid);
      if (before === sig) continue;
      if (before !== undefined && onlySeenDiffers(before, sig)) {
        const object = { sourcekey: messageKey(v, msg.uid, scoped), parentKey: path };
        push(changes, ops, { kind: "read", object, isRead: isSeen(sig) }, [msg.uid, sig]);
      } else if (onlyKnown) {
        needFetch.push(msg.uid);
      } else {
        const object = toSyncObject(v, path, msg, scoped !== undefined);
        push(changes, ops, { kind: "update", object, created: before === undefined }, [
          msg.uid,
          sig,
        ]);
      }
    }
    return needFetch;
  }

  function push(changes: Change[], ops: Op[], change: Change, op: Op): void {
    changes.push(change);
    ops.push(op);
  }

  /** Fetches the first chunk of `page.todo` and builds the page, with a resume point per change. */
  async function chunkPage(
    client: ImapFlow,
    cursor: MailboxCursor,
    page: MailboxPage,
    known0: Known,
    lead: { changes: Change[]; ops: Op[] },
    resumePage: MailboxPage | undefined,
  ): Promise<Page<MailboxCursor, MailboxPage>> {
    const { chunk, rest } = splitChunk(fromRanges(page.todo), chunkSize);
    const known = applyOps(new Map(known0), lead.ops);
    const changes = [...lead.changes];
    const ops = [...lead.ops];
    if (chunk.length) {
      const msgs = await fetchMessages(client, toRanges(chunk), query);
      diff(cursor.v, msgs, known, ops, changes, false);
      applyOps(known, ops.slice(lead.ops.length));
    }
    const last = rest.length === 0;
    const bounds =
      last && page.k === "fetch" && page.n !== undefined
        ? { m: page.m, n: page.n }
        : { m: cursor.m, n: cursor.n };
    const newCursor: MailboxCursor = {
      v: cursor.v,
      ...(bounds.m !== undefined ? { m: bounds.m } : {}),
      n: bounds.n,
      ...encodeKnown(known),
    };
    const positioned = changes.map((change, i) => ({
      ...change,
      // Resume right after change i: the known table up to it, then this page again (it diffs).
      position: () => ({
        cursor: { ...cursor, ...encodeKnown(applyOps(new Map(known0), ops, i + 1)) },
        page: resumePage,
      }),
    }));
    return {
      changes: positioned,
      newCursor,
      ...(last ? {} : { nextPage: { ...page, todo: toRanges(rest) } }),
    };
  }

  async function searchUids(client: ImapFlow, window: SyncWindow | undefined): Promise<number[]> {
    const days = window?.daysWithin;
    const criteria = days ? { since: new Date(Date.now() - days * 86_400_000) } : { all: true };
    const found = await client.search(criteria, { uid: true });
    if (!found) throw new ProtocolError(where, "UID SEARCH failed");
    return [...found].sort((a, b) => a - b);
  }

  async function fullStart(
    client: ImapFlow,
    box: MailboxObject,
    req: PageRequest<MailboxCursor, MailboxPage>,
  ) {
    const v = String(box.uidValidity);
    const m = modseqOf(box, plain);
    // A server that sends no UIDNEXT gets 0: every unknown UID then counts as new.
    const cursor: MailboxCursor = { v, ...(m ? { m } : {}), n: box.uidNext ?? 0, u: "", f: {} };
    const page: MailboxPage = { k: "full", todo: toRanges(await searchUids(client, req.window)) };
    return chunkPage(client, cursor, page, new Map(), { changes: [], ops: [] }, page);
  }

  async function incrementalStart(
    client: ImapFlow,
    box: MailboxObject,
    cursor: MailboxCursor,
    vanished: Set<number>,
  ) {
    if (cursor.m !== undefined && box.noModseq) {
      throw new StateInvalidError(`${where}: the mailbox lost its mod-sequences (NOMODSEQ)`);
    }
    const now = modseqOf(box, plain);
    if (cursor.m !== undefined && now !== undefined && BigInt(now) < BigInt(cursor.m)) {
      throw new StateInvalidError(`${where}: HIGHESTMODSEQ went back (${cursor.m} → ${now})`);
    }
    const uidNext = box.uidNext ?? 0;
    if (box.uidNext !== undefined && box.uidNext < cursor.n) {
      throw new StateInvalidError(`${where}: UIDNEXT went back (${cursor.n} → ${box.uidNext})`);
    }
    const known0 = decodeKnown(cursor);
    const flagQuery = { uid: true, flags: true };
    const useModseq = cursor.m !== undefined && now !== undefined;
    let rows: FetchMessageObject[];
    let gone: number[];
    if (useModseq && now === cursor.m && uidNext === cursor.n) {
      rows = [];
      gone = [];
      if (!client.enabled.has("QRESYNC")) gone = await expunged(client, known0);
    } else if (useModseq) {
      rows = await fetchMessages(client, ALL_UIDS, flagQuery, BigInt(cursor.m as string));
      gone = client.enabled.has("QRESYNC")
        ? [...vanished].filter((uid) => known0.has(uid))
        : await expunged(client, known0);
    } else {
      rows = box.exists === 0 ? [] : await fetchMessages(client, "1:*", flagQuery);
      const present = new Set(rows.map((r) => r.uid));
      gone = [...known0.keys()].filter((uid) => !present.has(uid));
    }
    const changes: Change[] = [];
    const ops: Op[] = [];
    for (const uid of gone.sort((a, b) => a - b)) {
      const object = {
        sourcekey: messageKey(cursor.v, uid, scoped),
        type: "item" as const,
        parentKey: path,
      };
      push(changes, ops, { kind: "delete", object, soft: false }, [uid, null]);
    }
    const goneSet = new Set(gone);
    const live = rows.filter(
      (r) => !goneSet.has(r.uid) && (known0.has(r.uid) || r.uid >= cursor.n),
    );
    const known = applyOps(new Map(known0), ops);
    const needFetch = diff(cursor.v, live, known, ops, changes, true);
    const page: MailboxPage = {
      k: "fetch",
      todo: toRanges(needFetch),
      ...(now !== undefined ? { m: now } : {}),
      n: uidNext,
    };
    return chunkPage(client, cursor, page, known0, { changes, ops }, undefined);
  }

  /** CONDSTORE without QRESYNC: expunges are the known UIDs `UID SEARCH ALL` no longer lists. */
  async function expunged(client: ImapFlow, known: Known): Promise<number[]> {
    if (known.size === 0) return [];
    const all = await client.search({ all: true }, { uid: true });
    if (!all) throw new ProtocolError(where, "UID SEARCH failed");
    const present = new Set(all);
    return [...known.keys()].filter((uid) => !present.has(uid));
  }

  /**
   * With QRESYNC every expunge raises HIGHESTMODSEQ (RFC 7162 §3.2.10), so an unchanged
   * STATUS (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) means nothing happened: no SELECT needed.
   * This keeps a server-wide sync over many quiet mailboxes at one STATUS each (§3.1.7).
   */
  async function unchangedSince(cursor: MailboxCursor, signal: AbortSignal): Promise<boolean> {
    if (plain || cursor.m === undefined || !mailboxCursorSchema.safeParse(cursor).success)
      return false;
    return connection.withClient(async (client) => {
      if (!client.enabled.has("QRESYNC")) return false;
      if (client.mailbox && client.mailbox.path === path) return false;
      const status = await freshStatus(client, path);
      return (
        status !== undefined &&
        String(status.uidValidity) === cursor.v &&
        String(status.highestModseq) === cursor.m &&
        status.uidNext === cursor.n
      );
    }, signal);
  }

  return {
    cursorSchema: mailboxCursorSchema,
    pageSchema: mailboxPageSchema,
    async fetchPage(req) {
      if (req.cursor && !req.page) {
        const unchanged = await unchangedSince(req.cursor, req.signal);
        if (unchanged) return { changes: [], newCursor: req.cursor };
      }
      return connection.withMailbox(
        path,
        async (client, box, vanished) => {
          const v = String(box.uidValidity);
          const { page } = req;
          // A composite child's cursor is not validated by the engine: check it here.
          const checked =
            req.cursor === undefined ? undefined : mailboxCursorSchema.safeParse(req.cursor);
          if (checked && !checked.success) throw new StateError(`${where}: state is corrupt`);
          const cursor = checked?.data;
          if (cursor && cursor.v !== v) {
            throw new StateInvalidError(`${where}: UIDVALIDITY changed (${cursor.v} → ${v})`);
          }
          if (!cursor) {
            if (page) throw new ProtocolError(where, "a page token without a cursor");
            return fullStart(client, box, req);
          }
          if (page) {
            const known = decodeKnown(cursor);
            return chunkPage(client, cursor, page, known, { changes: [], ops: [] }, page);
          }
          return incrementalStart(client, box, cursor, vanished);
        },
        req.signal,
        req.page === undefined,
      );
    },
  };
}
