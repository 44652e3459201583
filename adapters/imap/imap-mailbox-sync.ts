/**
 * `folder.sync` for one mailbox: a `ChangeSource` keyed on `uidvalidity:uid`.
 *
 * The cursor is UIDVALIDITY, HIGHESTMODSEQ and UIDNEXT (plus the known UIDs where expunges must
 * be found by diffing, and their flags in plain mode). A round's first page asks what changed,
 * moves the cursor, and lists the UIDs to deliver in its page token; every page then fetches the
 * next `chunkSize` of them and delivers each one, whatever the importer had before.
 * - QRESYNC: `UID FETCH 1:4294967295 (FLAGS) (CHANGEDSINCE m VANISHED)` (RFC 7162 §3.2.6).
 * - CONDSTORE: the same without VANISHED, plus `UID SEARCH ALL` diffed for expunges.
 * - neither (or NOMODSEQ): `UID FETCH 1:* (FLAGS)` diffed against the flags in the cursor.
 * Every message CHANGEDSINCE reports is delivered, so a value the importer applied and the server
 * then reverted before the state was saved is delivered again (its MODSEQ moved twice).
 */
import type { FetchMessageObject, ImapFlow, MailboxObject } from "imapflow";
import {
  NotFoundError,
  ProtocolError,
  StateError,
  StateInvalidError,
} from "../../src/core/errors.js";
import type { ChangeSource, Page, PageRequest } from "../../src/core/source.js";
import type { Change, SyncWindow } from "../../src/core/types.js";
import type { FreshStatus, ImapConnection, Selection } from "./imap-connection.js";
import {
  fetchMapped,
  fetchMessages,
  fetchQuery,
  isSeen,
  messageKey,
  onlySeenDiffers,
  signature,
  toSyncObject,
} from "./imap-messages.js";
import { decodeKnown, encodeKnown, fromRanges, splitRanges, toRanges } from "./imap-uidset.js";
import {
  type MailboxCursor,
  type MailboxPage,
  mailboxCursorSchema,
  mailboxPageSchema,
} from "./schemas.js";

const ALL_UIDS = "1:4294967295"; // not `1:*`: Cyrus may omit VANISHED UIDs above the highest existing
const FLAG_QUERY = { uid: true, flags: true };

/** How a round finds changes: decided per round from the session and the mailbox. */
type Mode = "qresync" | "condstore" | "plain";

type MailboxPageResult = Page<MailboxCursor, MailboxPage>;

/** The members of the core's `ChangeSource` contract (issue 10) this source implements. */
export interface MailboxSource extends ChangeSource<MailboxCursor, MailboxPage> {
  verify(keys: string[], request: PageRequest<MailboxCursor, MailboxPage>): Promise<Change[]>;
  identity(): string;
}

export interface MailboxSourceOptions {
  connection: ImapConnection;
  path: string;
  /** Keys as `mailbox/uidvalidity:uid` (the server-wide scope). */
  qualified?: boolean;
}

export function mailboxSource(options: MailboxSourceOptions): MailboxSource {
  const { connection, path } = options;
  const scoped = options.qualified ? path : undefined;
  const opts = connection.options;
  const forcePlain = (opts.mode ?? "auto") === "plain";
  const chunkSize = opts.chunkSize ?? 2000;
  const query = fetchQuery(opts.fetch ?? "envelope");
  const where = `${connection.label} mailbox "${path}"`;

  function modeOf(client: ImapFlow, box: MailboxObject): Mode {
    if (forcePlain || box.noModseq || !box.highestModseq) return "plain";
    return client.enabled.has("QRESYNC") ? "qresync" : "condstore";
  }

  const deleted = (v: string, uid: number): Change => ({
    kind: "delete",
    object: { sourcekey: messageKey(v, uid, scoped), type: "item", parentKey: path },
    soft: false,
  });

  /**
   * Fetches the first `chunkSize` UIDs of `todo` and delivers every one still there (`created`
   * for UIDs ≥ `newFrom`). In plain mode the cursor's flag table records what was delivered.
   */
  async function chunkPage(
    client: ImapFlow,
    cursor: MailboxCursor,
    page: MailboxPage,
    lead: Change[] = [],
  ): Promise<MailboxPageResult> {
    const { chunk, rest } = splitRanges(page.todo, page.w ?? chunkSize);
    const newFrom = page.k === "full" ? 0 : (page.n ?? Number.POSITIVE_INFINITY);
    // Mapped as the answers arrive (see fetchMapped); plain mode also notes each one's flags.
    const flags = cursor.f === undefined ? undefined : new Map<number, string>();
    const changes = lead;
    if (chunk) {
      const fetched = await fetchMapped(
        client,
        chunk,
        query,
        (msg): Change => {
          flags?.set(msg.uid, signature(msg.flags));
          const object = toSyncObject(cursor.v, path, msg, scoped !== undefined);
          return { kind: "update", object, created: msg.uid >= newFrom };
        },
        undefined,
        new Set(fromRanges(chunk)),
      );
      for (const change of fetched) changes.push(change);
    }
    let newCursor = cursor;
    if (flags?.size) {
      const known = decodeKnown(cursor);
      for (const [uid, sig] of flags) known.set(uid, sig);
      newCursor = { ...cursor, ...encodeKnown(known) };
    }
    return { changes, newCursor, ...(rest ? { nextPage: { ...page, todo: rest } } : {}) };
  }

  async function searchUids(client: ImapFlow, window: SyncWindow | undefined): Promise<number[]> {
    const days = window?.daysWithin;
    const criteria = days ? { since: new Date(Date.now() - days * 86_400_000) } : { all: true };
    const found = await client.search(criteria, { uid: true });
    if (!found) throw new ProtocolError(where, "UID SEARCH failed");
    return found;
  }

  async function fullStart(
    client: ImapFlow,
    box: MailboxObject,
    req: PageRequest<MailboxCursor, MailboxPage>,
  ): Promise<MailboxPageResult> {
    const mode = modeOf(client, box);
    // A server that sends no UIDNEXT gets 0: every unknown UID then counts as new.
    const cursor: MailboxCursor = { v: String(box.uidValidity), n: box.uidNext ?? 0 };
    if (mode !== "plain") cursor.m = String(box.highestModseq);
    if (mode === "qresync" && !req.window && box.uidNext) {
      // No UID list needed: pages are UID ranges below UIDNEXT, each as wide as `chunkSize`
      // messages would be at the mailbox's average density (one SEARCH less: ~0.1 s on 50k).
      const last = box.uidNext - 1;
      const w = Math.ceil((chunkSize * last) / Math.max(box.exists, 1));
      const todo = box.exists === 0 || last < 1 ? "" : `1:${last}`;
      return chunkPage(client, cursor, { k: "full", todo, ...(w !== chunkSize ? { w } : {}) });
    }
    const todo = toRanges(await searchUids(client, req.window));
    // The UIDs the importer may hold: what the full sync delivers (at most `todo`).
    if (mode === "condstore" || (mode === "qresync" && req.window)) cursor.u = todo;
    if (mode === "plain") Object.assign(cursor, { u: "", f: {} });
    return chunkPage(client, cursor, { k: "full", todo });
  }

  /** Plain mode: the flags of every message, diffed against the table in the cursor. */
  async function plainStart(
    client: ImapFlow,
    box: MailboxObject,
    cursor: MailboxCursor,
  ): Promise<MailboxPageResult> {
    if (cursor.f === undefined || cursor.u === undefined) {
      throw new StateInvalidError(
        `${where}: the mailbox no longer has mod-sequences (NOMODSEQ, or mode "plain"), and the ` +
          "state holds none of the flags a plain sync diffs against",
      );
    }
    const known = decodeKnown(cursor);
    const rows = box.exists === 0 ? [] : await fetchMessages(client, "1:*", FLAG_QUERY);
    const lead: Change[] = [];
    const todo: number[] = [];
    const present = new Set<number>();
    for (const row of rows) {
      present.add(row.uid);
      const before = known.get(row.uid);
      // Outside the full sync's window and never delivered: ignored (see docs).
      if (before === undefined && row.uid < cursor.n) continue;
      const sig = signature(row.flags);
      known.set(row.uid, sig);
      if (before === sig) continue;
      if (before !== undefined && onlySeenDiffers(before, sig)) {
        const object = { sourcekey: messageKey(cursor.v, row.uid, scoped), parentKey: path };
        lead.push({ kind: "read", object, isRead: isSeen(sig) });
      } else {
        todo.push(row.uid);
      }
    }
    for (const uid of [...known.keys()]) {
      if (present.has(uid)) continue;
      known.delete(uid);
      lead.push(deleted(cursor.v, uid));
    }
    const next: MailboxCursor = { v: cursor.v, n: box.uidNext ?? 0, ...encodeKnown(known) };
    return chunkPage(client, next, { k: "fetch", todo: toRanges(todo), n: cursor.n }, lead);
  }

  /** CONDSTORE / QRESYNC: what changed since `cursor.m`, each delivered whatever it was before. */
  async function modseqStart(
    client: ImapFlow,
    box: MailboxObject,
    mode: Exclude<Mode, "plain">,
    cursor: MailboxCursor,
    vanished: Set<number>,
  ): Promise<MailboxPageResult> {
    const m = cursor.m as string;
    const now = String(box.highestModseq);
    const uidNext = box.uidNext ?? 0;
    if (mode === "condstore" && cursor.u === undefined) {
      throw new StateInvalidError(
        `${where}: the server no longer offers QRESYNC, and the state holds no UID list to find ` +
          "expunges with",
      );
    }
    const known = cursor.u === undefined ? undefined : new Set(fromRanges(cursor.u));
    const unchanged = now === m && uidNext === cursor.n;
    // Even on an empty mailbox: the FETCH's VANISHED (EARLIER) reports what was expunged.
    const rows = unchanged ? [] : await fetchMessages(client, ALL_UIDS, FLAG_QUERY, BigInt(m));
    // With a window, only UIDs the importer may hold, and new ones, are delivered.
    const kept = rows.filter((r) => !known || known.has(r.uid) || r.uid >= cursor.n);
    let gone: number[];
    let u: Set<number> | undefined;
    if (mode === "qresync") {
      // VANISHED may name UIDs the importer never had (RFC 7162 §3.2.5 allows supersets).
      gone = [...vanished].filter((uid) => (known ? known.has(uid) : uid < cursor.n));
      if (known) {
        u = new Set(known);
        for (const r of kept) u.add(r.uid);
        for (const uid of gone) u.delete(uid);
      }
    } else {
      if (unchanged && known?.size === 0) return { changes: [], newCursor: cursor };
      const present = new Set(await searchUids(client, undefined));
      u = new Set<number>();
      for (const uid of known ?? []) if (present.has(uid)) u.add(uid);
      for (const r of kept) if (present.has(r.uid)) u.add(r.uid);
      gone = [...(known ?? [])].filter((uid) => !present.has(uid));
      for (const r of kept) if (!present.has(r.uid) && !known?.has(r.uid)) gone.push(r.uid);
    }
    const goneSet = new Set(gone);
    const lead = gone.sort((a, b) => a - b).map((uid) => deleted(cursor.v, uid));
    const todo = toRanges(kept.filter((r) => !goneSet.has(r.uid)).map((r) => r.uid));
    const next: MailboxCursor = { v: cursor.v, m: now, n: uidNext };
    if (u) next.u = toRanges(u);
    if (unchanged && lead.length === 0 && next.u === cursor.u) {
      return { changes: [], newCursor: cursor };
    }
    return chunkPage(client, next, { k: "fetch", todo, n: cursor.n }, lead);
  }

  async function incrementalStart(
    client: ImapFlow,
    box: MailboxObject,
    cursor: MailboxCursor,
    vanished: Set<number>,
  ): Promise<MailboxPageResult> {
    const mode = modeOf(client, box);
    if (cursor.m !== undefined && mode !== "plain") {
      // Also a cursor the server never issued (e.g. restored from an older snapshot).
      if (BigInt(String(box.highestModseq)) < BigInt(cursor.m)) {
        throw new StateInvalidError(
          `${where}: HIGHESTMODSEQ went back (${cursor.m} → ${box.highestModseq})`,
        );
      }
    } else if (cursor.m !== undefined && box.noModseq) {
      throw new StateInvalidError(`${where}: the mailbox lost its mod-sequences (NOMODSEQ)`);
    }
    if (box.uidNext !== undefined && box.uidNext < cursor.n) {
      throw new StateInvalidError(`${where}: UIDNEXT went back (${cursor.n} → ${box.uidNext})`);
    }
    if (mode === "plain" || cursor.m === undefined) return plainStart(client, box, cursor);
    return modseqStart(client, box, mode, cursor, vanished);
  }

  /**
   * Before a round: the mailbox's STATUS from the connection that never selects (fresh even
   * when this one keeps the mailbox selected). A new UIDVALIDITY is `StateInvalidError` at once;
   * with QRESYNC every expunge raises HIGHESTMODSEQ (RFC 7162 §3.2.10), so an unchanged
   * (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) means nothing happened: no SELECT, no FETCH. This
   * keeps a server-wide sync over many quiet mailboxes at one STATUS each (§3.1.7).
   */
  async function before(
    req: PageRequest<MailboxCursor, MailboxPage>,
  ): Promise<{ status?: FreshStatus; unchanged: boolean }> {
    const status = await connection.status(path, req.signal);
    const parsed = req.cursor && mailboxCursorSchema.safeParse(req.cursor);
    if (!status || status.uidValidity === undefined || !parsed || !parsed.success) {
      return { ...(status?.uidValidity !== undefined ? { status } : {}), unchanged: false };
    }
    const cursor = parsed.data;
    const v = String(status.uidValidity);
    if (cursor.v !== v) {
      throw new StateInvalidError(`${where}: UIDVALIDITY changed (${cursor.v} → ${v})`);
    }
    const unchanged =
      !forcePlain &&
      status.qresync &&
      cursor.m !== undefined &&
      String(status.highestModseq) === cursor.m &&
      status.uidNext === cursor.n;
    return { status, unchanged };
  }

  /** `uidvalidity:uid` (or `mailbox/uidvalidity:uid`) → its parts; undefined for another shape. */
  function parseKey(key: string): { v: string; uid: number } | undefined {
    const local = scoped === undefined ? key : key.slice(scoped.length + 1);
    if (scoped !== undefined && !key.startsWith(`${scoped}/`)) return undefined;
    const match = /^(\d+):(\d+)$/.exec(local);
    return match ? { v: match[1] as string, uid: Number(match[2]) } : undefined;
  }

  const isInbox = path.toUpperCase() === "INBOX";

  /** One page on the selected mailbox: a round's first page, or the next chunk of one. */
  function pageOf(
    client: ImapFlow,
    box: MailboxObject,
    vanished: Set<number>,
    req: PageRequest<MailboxCursor, MailboxPage>,
  ): Promise<MailboxPageResult> {
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
    if (page) return chunkPage(client, cursor, page);
    return incrementalStart(client, box, cursor, vanished);
  }

  /**
   * A round on a connection that still has INBOX selected (`watch`, a long-lived account): the
   * view is brought up to date in place (NOOP, then STATUS from the view), a few ms, where the
   * STATUS of `before` has to open the mailbox (20-40 ms on a 50,000-message Dovecot maildir).
   * That STATUS is there to see a mailbox deleted and re-created by another session, which
   * Dovecot's view never does (and a NOOP on such a stale view breaks Dovecot's index: `SELECT`
   * then answers `NO [SERVERBUG]`). INBOX can't be deleted (RFC 3501 §6.3.4) and a RENAME of it
   * only empties it, which the view sees, so INBOX needs no such check; other mailboxes keep it.
   */
  function refreshedRound(
    req: PageRequest<MailboxCursor, MailboxPage>,
  ): Promise<MailboxPageResult> {
    return connection.withMailbox(
      path,
      (client, box, vanished) => pageOf(client, box, vanished, req),
      req.signal,
      "refresh",
    );
  }

  return {
    cursorSchema: mailboxCursorSchema,
    pageSchema: mailboxPageSchema,
    // The next page's FETCH goes out while the importer works on this one. A page fetched ahead
    // (or kept by a round stopped by maxChanges) is never newer than the cursor says: the cursor's
    // HIGHESTMODSEQ was read before it, so anything changed since is delivered next round.
    readAhead: true,
    identity: () => `imap:${connection.label}/${path}`,
    async fetchPage(req) {
      if (!req.page && req.cursor !== undefined && isInbox && connection.isSelected(path)) {
        return refreshedRound(req);
      }
      let selection: Selection = "keep";
      if (!req.page) {
        const { status, unchanged } = await before(req);
        if (unchanged) return { changes: [], newCursor: req.cursor };
        selection = status ?? "select";
      }
      return connection.withMailbox(
        path,
        (client, box, vanished) => pageOf(client, box, vanished, req),
        req.signal,
        selection,
      );
    },
    /**
     * The current version of messages delivered earlier: one `UID FETCH` of their UIDs; a UID
     * the mailbox no longer holds (or a key of another UIDVALIDITY) is a delete.
     */
    async verify(keys, req) {
      const parsed = keys.map((key) => ({ key, parts: parseKey(key) }));
      let found: Map<number, FetchMessageObject>;
      let v: string | undefined;
      try {
        const status = await connection.status(path, req.signal);
        [v, found] = await connection.withMailbox(
          path,
          async (client, box) => {
            const current = String(box.uidValidity);
            const uids = parsed.flatMap((p) => (p.parts?.v === current ? [p.parts.uid] : []));
            const msgs = uids.length
              ? await fetchMessages(client, toRanges(uids), query, undefined, new Set(uids))
              : [];
            return [current, new Map(msgs.map((msg) => [msg.uid, msg]))] as const;
          },
          req.signal,
          status?.uidValidity !== undefined ? status : "select",
        );
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        found = new Map();
      }
      return parsed.map(({ key, parts }): Change => {
        const msg = parts && parts.v === v ? found.get(parts.uid) : undefined;
        if (!msg) {
          return {
            kind: "delete",
            object: { sourcekey: key, type: "item", parentKey: path },
            soft: false,
          };
        }
        const object = toSyncObject(parts?.v as string, path, msg, scoped !== undefined);
        return { kind: "update", object, created: false };
      });
    },
  };
}
