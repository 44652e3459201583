/**
 * Server-wide push over NOTIFY (RFC 5465): one connection for every mailbox of the account.
 * It EXAMINEs INBOX, sends
 * `NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge FlagChange))
 *  (PERSONAL (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))`
 * and IDLEs, re-issued before the 29-minute limit. INBOX reports as under plain IDLE; every other
 * personal mailbox through `* STATUS` (item hints), and mailbox create / delete / rename /
 * subscribe through `* LIST` (folder hints). Hints trigger a sync; they are never the data.
 * Without NOTIFY (or when `NOTIFY SET` is refused) the server scope falls back to IDLE on its
 * first 10 mailboxes, and the orchestrator's safety poll covers the rest.
 */
import { concat, defer, EMPTY, from, mergeMap, type Observable } from "rxjs";
import type { EventType, Notification, NotificationFilter } from "../../src/core/types.js";
import { mapImapError, type ResolvedImapOptions } from "./imap-client.js";
import type { ImapFolder } from "./imap-hierarchy.js";
import { mergedNotifications } from "./imap-idle.js";
import { messageKey } from "./imap-messages.js";
import {
  type Hint,
  idleUntilClosed,
  type PushSession,
  pushChannel,
  selectedMailboxHints,
} from "./imap-push.js";
import { type ListResponse, rawImap, type StatusCounts } from "./imap-raw.js";

/** Mailboxes the IDLE fallback watches (one connection each); the safety poll covers the rest. */
export const MAX_IDLE_WATCHED = 10;

/** Which kinds of hints a subscription wants: the NOTIFY SET asks only for those events. */
export interface NotifyWanted {
  items: boolean;
  folders: boolean;
}

/** What the last session knew, so a reconnect reports what changed while nobody listened. */
interface Baseline {
  counts?: Map<string, StatusCounts>;
  folders?: Map<string, ListResponse>;
}

const atom = (value: string) => ({ type: "ATOM", value });
// RFC 5465 §3.1: MessageNew and MessageExpunge go together; FlagChange needs both.
const MESSAGE_EVENTS = ["MessageNew", "MessageExpunge", "FlagChange"];
const MAILBOX_EVENTS = ["MailboxName", "SubscriptionChange"];

/** The arguments of `NOTIFY SET`; `STATUS` asks for each mailbox's counters up front (§3.1). */
function notifySetArguments(want: NotifyWanted): unknown[] {
  const personal = [...(want.items ? MESSAGE_EVENTS : []), ...(want.folders ? MAILBOX_EVENTS : [])];
  return [
    atom("SET"),
    ...(want.items ? [atom("STATUS"), [atom("SELECTED"), MESSAGE_EVENTS.map(atom)]] : []),
    [atom("PERSONAL"), personal.map(atom)],
  ];
}

const isSet = (x: number | undefined): x is number => x !== undefined;

/**
 * What a mailbox's new counters say happened since `prev`. `live`: the server sent them for an
 * event, so at least one hint comes out even when the counters alone show nothing.
 */
function changeEvents(prev: StatusCounts, cur: StatusCounts, live: boolean): EventType[] {
  const { uidValidity: v0 } = prev;
  if (v0 !== undefined && cur.uidValidity !== undefined && v0 !== cur.uidValidity) {
    return ["deleted", "created"]; // recreated under the same name: every UID is new
  }
  const added =
    isSet(prev.uidNext) && isSet(cur.uidNext) ? Math.max(0, cur.uidNext - prev.uidNext) : 0;
  const grew =
    isSet(prev.uidNext) && isSet(cur.uidNext)
      ? added > 0
      : isSet(prev.messages) && isSet(cur.messages) && cur.messages > prev.messages;
  // UIDs are only given to new messages: fewer messages than were there plus those added
  // means some were expunged (including new ones expunged again).
  const shrank =
    isSet(prev.messages) && isSet(cur.messages) && cur.messages < prev.messages + added;
  const events: EventType[] = [];
  if (grew) events.push("created");
  if (shrank) events.push("deleted");
  const changed =
    (cur.highestModseq !== undefined && cur.highestModseq !== prev.highestModseq) ||
    (cur.unseen !== undefined && cur.unseen !== prev.unseen);
  if (events.length === 0 && (changed || live)) events.push("updated");
  return events;
}

function itemHints(path: string, prev: StatusCounts, cur: StatusCounts, live: boolean): Hint[] {
  return changeEvents(prev, cur, live).map((eventType) => {
    // A deleted hint of a recreated mailbox names the old UIDVALIDITY.
    const v = eventType === "deleted" ? (prev.uidValidity ?? cur.uidValidity) : cur.uidValidity;
    const sourcekey = messageKey(String(v ?? prev.uidValidity ?? "*"), "*", path);
    const object = { sourcekey, type: "item" as const, parentKey: path };
    if (eventType === "deleted") return { objectType: "item", eventType, object };
    const data = {
      ...(isSet(cur.messages) ? { messages: cur.messages } : {}),
      ...(isSet(cur.uidNext) ? { uidNext: cur.uidNext } : {}),
      ...(cur.highestModseq !== undefined ? { highestModseq: String(cur.highestModseq) } : {}),
    };
    return { objectType: "item", eventType, object: { ...object, data } };
  });
}

function folderHint(eventType: EventType, entry: ListResponse): Hint {
  const { path, delimiter } = entry;
  const cut = delimiter ? path.lastIndexOf(delimiter) : -1;
  const parentKey = cut > 0 ? { parentKey: path.slice(0, cut) } : {};
  const object = { sourcekey: path, type: "folder" as const, ...parentKey };
  if (eventType === "deleted") return { objectType: "folder", eventType, object };
  const flags = entry.flags.map((f) => f.toLowerCase());
  const data: ImapFolder = {
    path,
    name: cut >= 0 ? path.slice(cut + delimiter.length) : path,
    delimiter,
    selectable: !flags.includes("\\noselect") && !flags.includes("\\nonexistent"),
  };
  return { objectType: "folder", eventType, object: { ...object, data } };
}

/** Hints for a `* LIST` (RFC 5465 §5.4, §5.5); keeps `counts` / `folders` current. */
function listHints(
  entry: ListResponse,
  counts: Map<string, StatusCounts>,
  folders: Map<string, ListResponse>,
): Hint[] {
  const { path, oldPath } = entry;
  if (oldPath !== undefined && oldPath !== path) {
    const old = folders.get(oldPath) ?? { ...entry, path: oldPath };
    folders.delete(oldPath);
    folders.set(path, entry);
    counts.set(path, counts.get(oldPath) ?? { messages: 0 });
    counts.delete(oldPath);
    return [folderHint("deleted", old), folderHint("created", entry)];
  }
  if (entry.flags.some((f) => f.toLowerCase() === "\\nonexistent")) {
    folders.delete(path);
    counts.delete(path);
    return [folderHint("deleted", entry)];
  }
  const known = folders.has(path);
  folders.set(path, entry);
  if (!counts.has(path)) counts.set(path, { messages: 0 });
  return [folderHint(known ? "updated" : "created", entry)];
}

/** One NOTIFY session; resolves `"unavailable"` when the server has no (usable) NOTIFY. */
async function notifySession(
  s: PushSession,
  want: NotifyWanted,
  base: Baseline,
): Promise<"unavailable" | undefined> {
  const c = s.client;
  if (!c.capabilities.has("NOTIFY")) return "unavailable";
  const raw = await rawImap(c);
  // Listed before NOTIFY SET: imapflow's LIST claims the `* LIST` / `* STATUS` notifications
  // that arrive while it runs.
  const folders = new Map<string, ListResponse>();
  if (want.folders) {
    for (const e of await c.list({ listOnly: true }))
      folders.set(e.path, { path: e.path, delimiter: e.delimiter, flags: [...e.flags] });
  }
  // IDLE needs a selected mailbox; INBOX's events then come as EXISTS / EXPUNGE / FETCH.
  const box = await c.mailboxOpen("INBOX", { readOnly: true }).catch((e: unknown) => {
    throw mapImapError(e, "IMAP NOTIFY: EXAMINE INBOX");
  });
  const counts = new Map<string, StatusCounts>();
  const inbox = (): StatusCounts => {
    const m = c.mailbox || box;
    return { uidValidity: box.uidValidity, messages: m.exists };
  };
  counts.set("INBOX", { ...inbox(), uidNext: box.uidNext, highestModseq: box.highestModseq });
  if (want.items) {
    selectedMailboxHints(s, "INBOX", String(box.uidValidity), true, () =>
      counts.set("INBOX", inbox()),
    );
  }
  // Live from here on: `* STATUS` / `* LIST` that no command claims are events.
  raw.onStatus(({ path, ...cur }) => {
    const prev = counts.get(path);
    counts.set(path, { ...prev, ...cur });
    for (const hint of itemHints(path, prev ?? { messages: 0 }, cur, true)) s.emit(hint);
  });
  raw.onList((entry) => {
    for (const hint of listHints(entry, counts, folders)) s.emit(hint);
  });
  try {
    // The STATUS responses before NOTIFY's OK are the initial counters, not events (§3.1).
    await raw.command("NOTIFY", notifySetArguments(want), ({ path, ...cur }) =>
      counts.set(path, cur),
    );
  } catch (error) {
    const status = (error as { responseStatus?: string }).responseStatus;
    if (status === "NO" || status === "BAD") return "unavailable";
    throw error;
  }
  // RFC 5465 §5.8: after an overflow the server sends nothing more; a new session sends
  // NOTIFY SET again and reports the difference (below).
  raw.onResponseCode("NOTIFICATIONOVERFLOW", () => c.close());
  if (want.items && base.counts) {
    for (const [path, cur] of counts) {
      for (const hint of itemHints(path, base.counts.get(path) ?? { messages: 0 }, cur, false))
        s.emit(hint);
    }
  }
  if (want.folders && base.folders) {
    for (const [path, entry] of folders)
      if (!base.folders.has(path)) s.emit(folderHint("created", entry));
    for (const [path, entry] of base.folders)
      if (!folders.has(path)) s.emit(folderHint("deleted", entry));
  }
  // Shared with the next session, which diffs against them after a reconnect.
  base.counts = counts;
  base.folders = folders;
  s.established();
  await idleUntilClosed(s);
}

/** Hints of every personal mailbox over one NOTIFY connection; completes without NOTIFY. */
export function notifyNotifications(
  options: ResolvedImapOptions,
  scope: string,
  want: NotifyWanted,
): Observable<Notification> {
  return defer(() => {
    const base: Baseline = {};
    return pushChannel(options, scope, "IMAP NOTIFY", (s) => notifySession(s, want, base));
  });
}

function wanted(filter: NotificationFilter | undefined): NotifyWanted {
  const types = filter?.objectTypes;
  return { items: !types || types.includes("item"), folders: !types || types.includes("folder") };
}

/**
 * The server scope's notifications: NOTIFY where the server has it, otherwise IDLE on the first
 * `MAX_IDLE_WATCHED` mailbox paths from `listPaths` (item hints only).
 */
export function serverNotifications(
  options: ResolvedImapOptions,
  listPaths: () => Promise<string[]>,
  filter?: NotificationFilter,
): Observable<Notification> {
  const want = wanted(filter);
  if (!want.items && !want.folders) return EMPTY;
  const fallback = defer(() =>
    want.items
      ? from(listPaths()).pipe(
          mergeMap((paths) =>
            mergedNotifications(options, paths.slice(0, MAX_IDLE_WATCHED), "server"),
          ),
        )
      : EMPTY,
  );
  return concat(notifyNotifications(options, "server", want), fallback);
}

/** The hierarchy scope's notifications: NOTIFY MailboxName / SubscriptionChange, or none. */
export function hierarchyNotifications(options: ResolvedImapOptions): Observable<Notification> {
  return notifyNotifications(options, "hierarchy", { items: false, folders: true });
}
