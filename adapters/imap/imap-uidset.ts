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

/** Splits sorted UIDs into the first `size` and the rest. */
export function splitChunk(uids: number[], size: number): { chunk: number[]; rest: number[] } {
  return { chunk: uids.slice(0, size), rest: uids.slice(size) };
}

/** uid → flag signature: what the importer holds. */
export type Known = Map<number, string>;
/** One change's effect on the known table: a new signature, or `null` for a deletion. */
export type Op = [uid: number, sig: string | null];

export function decodeKnown(cursor: MailboxCursor): Known {
  const known: Known = new Map();
  for (const uid of fromRanges(cursor.u)) known.set(uid, "");
  for (const [sig, set] of Object.entries(cursor.f)) {
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

export function applyOps(known: Known, ops: Op[], upTo = ops.length): Known {
  for (let i = 0; i < upTo; i++) {
    const [uid, sig] = ops[i] as Op;
    if (sig === null) known.delete(uid);
    else known.set(uid, sig);
  }
  return known;
}
