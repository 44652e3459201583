/**
 * Compact UID sets (`1:5,7,9:12`), the IMAP sequence-set syntax, for cursors and commands, and
 * the known-UID table a mailbox cursor holds.
 */
import type { MailboxCursor } from "./schemas.js";

/** Sorted, de-duplicated UIDs → `1:5,7`. */
export function toRanges(uids: Iterable<number>): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  let start: number | undefined;
  let prev = 0;
  for (const uid of sorted) {
    if (start !== undefined && uid === prev + 1) {
      prev = uid;
      continue;
    }
    if (start !== undefined) parts.push(start === prev ? `${start}` : `${start}:${prev}`);
    start = uid;
    prev = uid;
  }
  if (start !== undefined) parts.push(start === prev ? `${start}` : `${start}:${prev}`);
  return parts.join(",");
}

/** `1:5,7` → [1, 2, 3, 4, 5, 7]. */
export function fromRanges(set: string): number[] {
  const out: number[] = [];
  if (!set) return out;
  for (const part of set.split(",")) {
    const [a, b] = part.split(":");
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) continue;
    for (let uid = Math.min(lo, hi); uid <= Math.max(lo, hi); uid++) out.push(uid);
  }
  return out;
}

/**
 * Splits a UID set into its first `size` UIDs and the rest, both as sets, without expanding the
 * ranges (a 50,000-UID set is one range and stays one).
 */
export function splitRanges(set: string, size: number): { chunk: string; rest: string } {
  const chunk: string[] = [];
  const rest: string[] = [];
  let left = size;
  for (const part of set ? set.split(",") : []) {
    if (left === 0) {
      rest.push(part);
      continue;
    }
    const [a, b] = part.split(":");
    const lo = Math.min(Number(a), Number(b ?? a));
    const hi = Math.max(Number(a), Number(b ?? a));
    const count = hi - lo + 1;
    if (count <= left) {
      chunk.push(part);
      left -= count;
      continue;
    }
    const end = lo + left - 1;
    chunk.push(end === lo ? `${lo}` : `${lo}:${end}`);
    rest.push(end + 1 === hi ? `${hi}` : `${end + 1}:${hi}`);
    left = 0;
  }
  return { chunk: chunk.join(","), rest: rest.join(",") };
}

/** uid → flag signature: what the importer holds. */
export type Known = Map<number, string>;

export function decodeKnown(cursor: MailboxCursor): Known {
  const known: Known = new Map();
  for (const uid of fromRanges(cursor.u ?? "")) known.set(uid, "");
  for (const [sig, set] of Object.entries(cursor.f ?? {})) {
    for (const uid of fromRanges(set)) if (known.has(uid)) known.set(uid, sig);
  }
  return known;
}

export function encodeKnown(known: Known): Pick<MailboxCursor, "u" | "f"> {
  const bySig = new Map<string, number[]>();
  for (const [uid, sig] of known) {
    if (!sig) continue;
    let list = bySig.get(sig);
    if (!list) bySig.set(sig, (list = []));
    list.push(uid);
  }
  const f: Record<string, string> = {};
  for (const [sig, uids] of bySig) f[sig] = toRanges(uids);
  return { u: toRanges(known.keys()), f };
}
