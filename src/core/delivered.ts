/**
 * Resuming inside a page without trusting the server to answer the same way twice.
 *
 * A round that stops inside a page saves, per key it processed there, the fingerprints of the
 * changes it processed for that key, in order (the *delivered set*, bounded by one page). The
 * next round fetches the page again and compares, key by key, the new answer with what the
 * importer already has:
 *
 * - the longest common prefix of the two sequences is skipped: those changes are proven applied;
 * - from the first difference on, every change of that key is delivered (the server moved on);
 * - a key the new answer says less about (absent, or only a prefix of what was delivered) was
 *   dropped without a trace (no tombstone for an object created and deleted since the cursor, a
 *   value reverted to what the cursor saw): the source's `verify` reports its current version,
 *   delivered unless it is the very change the importer applied last to that key.
 */
import { createHash } from "node:crypto";
import { ProtocolError, StateInvalidError } from "./errors.js";
import type { PageRequest, ScopeDefinition } from "./source.js";
import type { Change } from "./types.js";

/** As saved in the state: key → the fingerprints of its processed changes, joined by ".". */
export type DeliveredSet = Record<string, string>;

const SEPARATOR = ".";
/** A key the importer may have been given anything for: never skipped, verified when unlisted. */
const UNKNOWN = "?";

/**
 * `delivered` plus every key of `changes` marked unknown: what to save before the importer sees
 * `changes` from a backend that cannot report a change undone later (`reportsByContent`).
 */
export function withPending(
  delivered: DeliveredSet | undefined,
  keys: Iterable<string>,
): DeliveredSet {
  const out = record(delivered && Object.entries(delivered));
  for (const key of keys) out[key] = UNKNOWN;
  return out;
}

/**
 * What a change does to the importer's copy, in 12 characters: equal fingerprints mean applying
 * the second change is a no-op. Computed only when a round stops or resumes inside a page.
 */
function fingerprint(change: Change): string {
  let effect: unknown;
  switch (change.kind) {
    case "update":
      effect = ["u", change.object];
      break;
    case "delete":
      effect = ["d", change.object.type, change.object.parentKey ?? null, change.soft];
      break;
    case "read":
      effect = ["r", change.object.parentKey ?? null, change.isRead];
      break;
    case "move":
      effect = ["m", change.object, change.fromParentKey];
      break;
  }
  return createHash("sha256").update(JSON.stringify(effect)).digest("base64url").slice(0, 12);
}

/** The delivered set of a round that processed `changes[0..last]` of a page it had not seen. */
export function deliveredUpTo(changes: readonly Change[], last: number): DeliveredSet {
  const seqs = new Map<string, string[]>();
  for (let i = 0; i <= last; i++) {
    const change = changes[i] as Change;
    const key = change.object.sourcekey;
    const seq = seqs.get(key);
    if (seq) seq.push(fingerprint(change));
    else seqs.set(key, [fingerprint(change)]);
  }
  return join(seqs);
}

/** A page fetched again by a resumed round, compared with what the importer already has. */
export class ResumedPage {
  /** The page's changes, then the verified ones (always delivered). */
  readonly changes: Change[];
  readonly #had: Map<string, string[]>;
  readonly #skipped: Set<number>;
  readonly #prints = new Map<number, string>();

  private constructor(
    changes: Change[],
    had: Map<string, string[]>,
    skipped: Set<number>,
    prints: Map<number, string>,
  ) {
    this.changes = changes;
    this.#had = had;
    this.#skipped = skipped;
    this.#prints = prints;
  }

  static async open(
    def: ScopeDefinition,
    page: Change[],
    saved: DeliveredSet,
    request: PageRequest,
  ): Promise<ResumedPage> {
    const had = new Map<string, string[]>();
    for (const [key, joined] of Object.entries(saved)) had.set(key, joined.split(SEPARATOR));
    const prints = new Map<number, string>();
    const now = new Map<string, number[]>();
    page.forEach((change, i) => {
      const key = change.object.sourcekey;
      if (!had.has(key)) return;
      prints.set(i, fingerprint(change));
      const seen = now.get(key);
      if (seen) seen.push(i);
      else now.set(key, [i]);
    });
    const skipped = new Set<number>();
    const missing: string[] = [];
    for (const [key, fps] of had) {
      const indexes = now.get(key) ?? [];
      let common = 0;
      while (
        common < indexes.length &&
        common < fps.length &&
        prints.get(indexes[common] as number) === fps[common]
      ) {
        skipped.add(indexes[common] as number);
        common++;
      }
      if (common === indexes.length && indexes.length < fps.length) missing.push(key);
    }
    const verified = missing.length ? await verify(def, missing, request) : [];
    const answers = new Map<string, number[]>();
    verified.forEach((change, j) => {
      prints.set(page.length + j, fingerprint(change));
      const key = change.object.sourcekey;
      const seen = answers.get(key);
      if (seen) seen.push(page.length + j);
      else answers.set(key, [page.length + j]);
    });
    // The importer's last changes to a key were these very ones (a verify before the stop):
    // applying them again is a no-op, and delivering them would stop every round here. A key
    // can answer with several changes (a message's update and read): the longest prefix of its
    // answer that the importer's last changes end with is skipped, not only a change equal to
    // the very last one — that rule delivered the update and the read in turn, one per
    // `maxChanges: 1` round, forever.
    for (const [key, indexes] of answers) {
      const fps = had.get(key) ?? [];
      for (let k = Math.min(indexes.length, fps.length); k > 0; k--) {
        const tail = fps.slice(fps.length - k);
        if (tail.every((fp, i) => prints.get(indexes[i] as number) === fp)) {
          for (const i of indexes.slice(0, k)) skipped.add(i);
          break;
        }
      }
    }
    return new ResumedPage([...page, ...verified], had, skipped, prints);
  }

  /** True when change `i` is proven applied already. */
  skips(i: number): boolean {
    return this.#skipped.has(i);
  }

  /** The delivered set to save when the round stops after change `last`. */
  deliveredUpTo(last: number): DeliveredSet {
    const seqs = new Map<string, string[]>();
    const moved = new Set<string>();
    for (let i = 0; i <= last; i++) {
      const change = this.changes[i] as Change;
      const key = change.object.sourcekey;
      const print = this.#prints.get(i) ?? fingerprint(change);
      const seq = seqs.get(key);
      if (seq) seq.push(print);
      else seqs.set(key, [print]);
      if (!this.#skipped.has(i)) moved.add(key);
    }
    // A key whose changes so far were all skipped still holds everything it had.
    for (const [key, fps] of this.#had) if (!moved.has(key)) seqs.set(key, fps);
    return join(seqs);
  }
}

async function verify(
  def: ScopeDefinition,
  keys: string[],
  request: PageRequest,
): Promise<Change[]> {
  if (!def.source.verify) {
    throw new StateInvalidError(
      `${def.adapter} ${def.scope}: the state resumes inside a page that no longer lists ` +
        `${keys.length} object(s) it had delivered, and the adapter cannot verify objects`,
    );
  }
  const verified = await def.source.verify(keys, request);
  if (!Array.isArray(verified)) {
    throw new ProtocolError(`${def.adapter} ${def.scope}`, "verify must resolve with Change[]");
  }
  return verified;
}

function join(seqs: Map<string, string[]>): DeliveredSet {
  return record([...seqs].map(([key, fps]) => [key, fps.join(SEPARATOR)]));
}

/** A key → value object with no prototype: a sourcekey may well be `__proto__`. */
export function record(entries: Iterable<[string, string]> = []): DeliveredSet {
  const out: DeliveredSet = Object.create(null);
  for (const [key, value] of entries) out[key] = value;
  return out;
}
