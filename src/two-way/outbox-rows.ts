/**
 * The row form of a pair's outbox, shared by the SQLite, memory and PostgreSQL row outboxes: each
 * pending entry and each remembered echo is its own row, next to one meta row per pair (a version
 * for compare-and-set, `next`, `cursor`, the conflicts). A commit writes only the rows `fn`
 * changed, found by identity (entries and echoes are values: `log.ts` replaces one that changes),
 * so a push of N pending entries writes O(1) rows per entry instead of the whole document.
 */
import { StateError } from "../core/errors.js";
import { checkDoc, type Echo, emptyDoc, type OutboxDoc } from "./log.js";
import type { OutboxEntry } from "./types.js";

/** Document-shaped access to a row outbox (what `createOutbox` uses instead of documents). */
export interface OutboxRows {
  read(key: string): OutboxDoc | Promise<OutboxDoc>;
  /**
   * Applies `fn` to the pair's document and saves what changed, atomically and checked against
   * the pair's version. `replayable`: the commit may skip its fsync (see `Outbox.update`).
   */
  update<R>(
    key: string,
    fn: (doc: OutboxDoc) => R,
    options?: { replayable?: boolean },
  ): R | Promise<R>;
  keys(): string[] | Promise<string[]>;
}

/** A pair's meta row; version 0: not saved yet. */
export interface MetaRow {
  version: number;
  next: number;
  cursor: number;
  /** The last echo's order number (echoes are loaded oldest first). */
  ord: number;
  /** The conflicts, as JSON. */
  conflicts: string;
}

/** The pair's document, and what of it is saved (to find what `fn` changed). */
export interface RowSnapshot {
  meta: MetaRow;
  doc: OutboxDoc;
  /** The entries as saved, ascending seq. */
  entries: OutboxEntry[];
  echoes: Map<string, Echo>;
}

/** What one commit writes. */
export interface RowChanges {
  meta: MetaRow;
  putEntries: OutboxEntry[];
  dropEntries: number[];
  putEchoes: { echo: Echo; ord: number }[];
  dropEchoes: string[];
}

const unsavedMeta = (): MetaRow => ({ version: 0, next: 1, cursor: 0, ord: 0, conflicts: "[]" });

/** A snapshot of a document as loaded from its rows. */
export function loaded(meta: MetaRow, doc: OutboxDoc): RowSnapshot {
  return {
    meta,
    doc,
    entries: [...doc.entries],
    echoes: new Map(doc.echoes.map((e) => [e.sourcekey, e])),
  };
}

/**
 * A snapshot of a pair with no rows: empty, or a document an older version kept whole in the
 * state table (its first commit writes every row).
 */
export function unsaved(doc: OutboxDoc = emptyDoc()): RowSnapshot {
  return { meta: unsavedMeta(), doc, entries: [], echoes: new Map() };
}

/** Builds (and checks, like a document from another process) a pair's document from its rows. */
export function docFromRows(
  key: string,
  meta: MetaRow,
  entries: readonly string[],
  echoes: readonly string[],
): OutboxDoc {
  let doc: unknown;
  try {
    doc = {
      v: 1,
      next: meta.next,
      cursor: meta.cursor,
      entries: entries.map((t) => JSON.parse(t) as unknown),
      conflicts: JSON.parse(meta.conflicts) as unknown,
      echoes: echoes.map((t) => JSON.parse(t) as unknown),
    };
  } catch {
    throw new StateError(`outbox ${key} is corrupt: a row is not JSON`);
  }
  return checkDoc(key, doc);
}

/** What changed in `s.doc` since it was saved; undefined when nothing did. */
export function changes(s: RowSnapshot): RowChanges | undefined {
  const { doc, meta } = s;
  const putEntries: OutboxEntry[] = [];
  const dropEntries: number[] = [];
  // Both lists ascend by seq: one merge walk, comparing objects by identity.
  const was = s.entries;
  const now = doc.entries;
  let i = 0;
  let j = 0;
  while (i < was.length || j < now.length) {
    const a = was[i];
    const b = now[j];
    if (j > 0 && b && b.seq <= (now[j - 1] as OutboxEntry).seq) {
      throw new StateError(`outbox: entries out of order at seq ${b.seq}`);
    }
    if (a && b && a.seq === b.seq) {
      if (a !== b) putEntries.push(b);
      i++;
      j++;
    } else if (a && (!b || a.seq < b.seq)) {
      dropEntries.push(a.seq);
      i++;
    } else {
      putEntries.push(b as OutboxEntry);
      j++;
    }
  }
  let ord = meta.ord;
  const putEchoes: RowChanges["putEchoes"] = [];
  let kept = 0;
  for (const e of doc.echoes) {
    const old = s.echoes.get(e.sourcekey);
    if (old !== undefined) kept++;
    if (old !== e) putEchoes.push({ echo: e, ord: ++ord });
  }
  const dropEchoes: string[] = [];
  if (kept < s.echoes.size) {
    const present = new Set(doc.echoes.map((e) => e.sourcekey));
    for (const k of s.echoes.keys()) if (!present.has(k)) dropEchoes.push(k);
  }
  const conflicts = JSON.stringify(doc.conflicts);
  const same =
    putEntries.length === 0 &&
    dropEntries.length === 0 &&
    putEchoes.length === 0 &&
    dropEchoes.length === 0 &&
    doc.next === meta.next &&
    doc.cursor === meta.cursor &&
    conflicts === meta.conflicts;
  if (same) return undefined;
  return {
    meta: { version: meta.version + 1, next: doc.next, cursor: doc.cursor, ord, conflicts },
    putEntries,
    dropEntries,
    putEchoes,
    dropEchoes,
  };
}

/** Records in the snapshot that `ch` was saved. */
export function saved(s: RowSnapshot, ch: RowChanges): void {
  s.meta = ch.meta;
  s.entries = [...s.doc.entries];
  for (const { echo } of ch.putEchoes) s.echoes.set(echo.sourcekey, echo);
  for (const k of ch.dropEchoes) s.echoes.delete(k);
}

/**
 * The document for a reader: its own lists (the snapshot moves on under later commits); the
 * entries and echoes are shared values, never changed in place.
 */
export function readCopy(s: RowSnapshot): OutboxDoc {
  const d = s.doc;
  return { ...d, entries: [...d.entries], echoes: [...d.echoes], conflicts: [...d.conflicts] };
}
