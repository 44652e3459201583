/**
 * What the adapter exports for one message, and the flag signatures kept in cursors.
 */
import type {
  FetchMessageObject,
  FetchQueryObject,
  ImapFlow,
  MessageAddressObject,
} from "imapflow";
import type { SyncObject } from "../../src/core/types.js";
import type { ImapFetchMode } from "./schemas.js";

export interface ImapAddress {
  name?: string;
  address?: string;
}

/** One message as deltasync exports it (the `data` of a `SyncObject`). */
export interface ImapMessage {
  uid: number;
  /** Every flag but `\Seen` and `\Recent`, sorted; `\Seen` travels as `seen` (the read channel). */
  flags: string[];
  seen: boolean;
  size?: number;
  internalDate?: string;
  envelope?: {
    date?: string;
    subject?: string;
    messageId?: string;
    inReplyTo?: string;
    from?: ImapAddress[];
    to?: ImapAddress[];
    cc?: ImapAddress[];
  };
  bodyStructure?: unknown;
  /** The full RFC 5322 source, base64, when `fetch: "source"`. */
  source?: string;
}

const SEEN = "\\Seen";

/** The flags a cursor remembers for a UID: sorted, `\Recent` dropped (it is session state). */
export function signature(flags: Iterable<string> | undefined): string {
  return [...(flags ?? [])]
    .filter((f) => f.toLowerCase() !== "\\recent")
    .sort()
    .join(" ");
}

/** True when two signatures differ in `\Seen` only. */
export function onlySeenDiffers(before: string, after: string): boolean {
  const strip = (s: string) =>
    s
      .split(" ")
      .filter((f) => f && f !== SEEN)
      .join(" ");
  return strip(before) === strip(after) && before !== after;
}

export function isSeen(sig: string): boolean {
  return sig.split(" ").includes(SEEN);
}

/**
 * `uidvalidity:uid`; with `mailbox` (the server-wide scope) `mailbox/uidvalidity:uid`, since
 * Cyrus can give two mailboxes created in the same second the same UIDVALIDITY.
 */
export function messageKey(uidValidity: string, uid: number | "*", mailbox?: string): string {
  return mailbox === undefined ? `${uidValidity}:${uid}` : `${mailbox}/${uidValidity}:${uid}`;
}

export function fetchQuery(mode: ImapFetchMode): FetchQueryObject {
  return {
    uid: true,
    flags: true,
    size: true,
    internalDate: true,
    envelope: true,
    ...(mode === "bodyStructure" ? { bodyStructure: true } : {}),
    ...(mode === "source" ? { source: true } : {}),
  };
}

/**
 * A copy of `s` that holds only its own characters. imapflow's parser slices each token out of
 * the whole response line, and V8 keeps the line alive as long as any slice of it lives: a kept
 * subject would hold the message's whole FETCH response.
 */
function own(s: string): string {
  return s.length < 13 ? s : ` ${s}`.slice(1);
}

function addresses(list: MessageAddressObject[]): ImapAddress[] {
  const out: ImapAddress[] = [];
  for (const a of list) {
    const entry: ImapAddress = {};
    if (a.name) entry.name = own(a.name);
    if (a.address) entry.address = own(a.address);
    out.push(entry);
  }
  return out;
}

function iso(date: Date | string | undefined): string | undefined {
  if (date === undefined) return undefined;
  const d = typeof date === "string" ? new Date(date) : date;
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Maps one FETCH answer (plain assignments: this runs once per message of a full sync). */
export function toMessage(msg: FetchMessageObject): ImapMessage {
  const flags: string[] = [];
  let seen = false;
  for (const f of msg.flags ?? []) {
    if (f === SEEN) seen = true;
    else if (f.toLowerCase() !== "\\recent") flags.push(f);
  }
  const out: ImapMessage = { uid: msg.uid, flags: flags.sort(), seen };
  if (msg.size !== undefined) out.size = msg.size;
  const internal = iso(msg.internalDate);
  if (internal) out.internalDate = internal;
  const env = msg.envelope;
  if (env) {
    const envelope: NonNullable<ImapMessage["envelope"]> = {};
    const date = iso(env.date);
    if (date) envelope.date = date;
    if (env.subject !== undefined) envelope.subject = own(env.subject);
    if (env.messageId) envelope.messageId = own(env.messageId);
    if (env.inReplyTo) envelope.inReplyTo = own(env.inReplyTo);
    if (env.from) envelope.from = addresses(env.from);
    if (env.to) envelope.to = addresses(env.to);
    if (env.cc) envelope.cc = addresses(env.cc);
    out.envelope = envelope;
  }
  if (msg.bodyStructure) out.bodyStructure = msg.bodyStructure;
  if (msg.source) out.source = msg.source.toString("base64");
  return out;
}

export function toSyncObject(
  uidValidity: string,
  path: string,
  msg: FetchMessageObject,
  qualified = false,
): SyncObject<ImapMessage> {
  const object: SyncObject<ImapMessage> = {
    sourcekey: messageKey(uidValidity, msg.uid, qualified ? path : undefined),
    type: "item",
    parentKey: path,
    data: toMessage(msg),
  };
  if (msg.modseq !== undefined) object.changeKey = String(msg.modseq);
  return object;
}

/**
 * True when `msg` answers a FETCH of `query`: it has a UID and every attribute asked for. Any
 * other FETCH response that arrives while the command runs is an unsolicited flag update from
 * another session (`* 12 FETCH (FLAGS (\Seen))`, RFC 3501 §7.4.2), which imapflow hands over
 * like the real answers: it is not message data.
 */
function answers(msg: FetchMessageObject, query: FetchQueryObject): boolean {
  return (
    typeof msg.uid === "number" &&
    (!query.flags || msg.flags !== undefined) &&
    (!query.envelope || msg.envelope !== undefined) &&
    (!query.internalDate || msg.internalDate !== undefined) &&
    (!query.size || msg.size !== undefined) &&
    (!query.bodyStructure || msg.bodyStructure !== undefined) &&
    (!query.source || msg.source !== undefined)
  );
}

/**
 * Fetches `range` (a UID set) and resolves with the messages sorted by UID: one per UID, only
 * real answers (see `answers`), and with `wanted` only the UIDs it holds.
 */
export function fetchMessages(
  client: ImapFlow,
  range: string,
  query: FetchQueryObject,
  changedSince?: bigint,
  wanted?: Set<number>,
): Promise<FetchMessageObject[]> {
  return fetchMapped(client, range, query, (msg) => msg, changedSince, wanted);
}

/**
 * `fetchMessages`, each answer mapped by `map` as it arrives: a page keeps only what `map`
 * returns, not imapflow's parsed responses (keeping those until the page ends cost a full sync
 * of 50,000 messages about a fifth of its time in garbage collection).
 */
export async function fetchMapped<T>(
  client: ImapFlow,
  range: string,
  query: FetchQueryObject,
  map: (msg: FetchMessageObject) => T,
  changedSince?: bigint,
  wanted?: Set<number>,
): Promise<T[]> {
  const uids: number[] = [];
  const values: T[] = [];
  const options = changedSince === undefined ? { uid: true } : { uid: true, changedSince };
  let ascending = true;
  for await (const msg of client.fetch(range, query, options)) {
    if (!answers(msg, query) || (wanted && !wanted.has(msg.uid))) continue;
    if (uids.length > 0 && msg.uid <= (uids[uids.length - 1] as number)) ascending = false;
    uids.push(msg.uid);
    values.push(map(msg));
  }
  // Servers answer in UID order as a rule; a repeated UID (the last answer wins) or another
  // order is sorted out here.
  if (ascending) return values;
  const byUid = new Map<number, T>();
  for (let i = 0; i < uids.length; i++) byUid.set(uids[i] as number, values[i] as T);
  return [...byUid.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
}
