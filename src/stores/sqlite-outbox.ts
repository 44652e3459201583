/**
 * A row-per-entry outbox in SQLite: each pending entry and each remembered echo is its own row,
 * so a push's commit writes the few rows it changed instead of rewriting the pair's whole
 * document (which made pushing N pending edits cost O(N²)). The pusher still sees one
 * `OutboxDoc` per pair: `update(pair, fn)` applies `fn` to the document in one `BEGIN IMMEDIATE`
 * transaction and saves the difference, so writers in several processes keep the outbox's
 * compare-and-set guarantee (a version number per pair; a stale cache is reloaded).
 */
import { StateError } from "../core/errors.js";
import type { Echo, OutboxDoc } from "../two-way/log.js";
import { emptyDoc, parseDoc } from "../two-way/log.js";
import type { OutboxEntry } from "../two-way/types.js";
import type { SqliteDatabase } from "./sqlite-driver.js";

/** `PRAGMA synchronous` values. */
const FULL = 2;

/** The document-shaped access the outbox needs, over rows. */
export interface OutboxRows {
  read(key: string): OutboxDoc;
  /** `replayable`: the commit may skip its fsync (see `Outbox.update`). */
  update<R>(key: string, fn: (doc: OutboxDoc) => R, options?: { replayable?: boolean }): R;
  keys(): string[];
}

interface Cached {
  version: number;
  doc: OutboxDoc;
  /** Each entry as last saved: the object and a shallow copy (to see in-place changes). */
  entries: Map<number, { obj: OutboxEntry; copy: OutboxEntry }>;
  echoes: Map<string, Echo>;
  conflicts: string;
  ord: number;
}

/** Every field an entry may have: compared one by one (no allocation per commit and entry). */
const FIELDS = [
  "kind",
  "seq",
  "at",
  "localId",
  "sourcekey",
  "changeKey",
  "parentKey",
  "data",
  "isRead",
  "merged",
  "replaces",
] as const;

const sameEntry = (a: OutboxEntry, b: OutboxEntry) => {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const k of FIELDS) if (x[k] !== y[k]) return false;
  return true;
};

/**
 * Row tables `<table>_ob_meta`, `<table>_ob_entries`, `<table>_ob_echoes` next to a state
 * store's table. A pair's document left in the state table by an older version (key
 * `<prefix><pair>`) is moved into rows the first time the pair is used.
 */
export function sqliteOutboxRows(db: SqliteDatabase, table: string): OutboxRows {
  // The state store's table (where an older version kept whole documents), then the rows.
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, state TEXT NOT NULL, saved_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS ${table}_ob_meta (
      key TEXT PRIMARY KEY, version INTEGER NOT NULL, next INTEGER NOT NULL,
      cursor INTEGER NOT NULL, ord INTEGER NOT NULL, conflicts TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS ${table}_ob_entries (
      key TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (key, seq));
    CREATE TABLE IF NOT EXISTS ${table}_ob_echoes (
      key TEXT NOT NULL, sourcekey TEXT NOT NULL, ord INTEGER NOT NULL, echo TEXT NOT NULL,
      PRIMARY KEY (key, sourcekey));`);
  const meta = db.prepare<
    [string],
    { version: number; next: number; cursor: number; ord: number; conflicts: string }
  >(`SELECT version, next, cursor, ord, conflicts FROM ${table}_ob_meta WHERE key = ?`);
  const version = db.prepare<[string], { version: number }>(
    `SELECT version FROM ${table}_ob_meta WHERE key = ?`,
  );
  const saveMeta = db.prepare(
    `INSERT INTO ${table}_ob_meta (key, version, next, cursor, ord, conflicts) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET version = excluded.version, next = excluded.next,
      cursor = excluded.cursor, ord = excluded.ord, conflicts = excluded.conflicts`,
  );
  const entries = db.prepare<[string], { entry: string }>(
    `SELECT entry FROM ${table}_ob_entries WHERE key = ? ORDER BY seq`,
  );
  const putEntry = db.prepare(
    `INSERT INTO ${table}_ob_entries (key, seq, entry) VALUES (?, ?, ?)
      ON CONFLICT (key, seq) DO UPDATE SET entry = excluded.entry`,
  );
  const dropEntry = db.prepare(`DELETE FROM ${table}_ob_entries WHERE key = ? AND seq = ?`);
  const echoes = db.prepare<[string], { echo: string; ord: number }>(
    `SELECT echo, ord FROM ${table}_ob_echoes WHERE key = ? ORDER BY ord`,
  );
  const putEcho = db.prepare(
    `INSERT INTO ${table}_ob_echoes (key, sourcekey, ord, echo) VALUES (?, ?, ?, ?)
      ON CONFLICT (key, sourcekey) DO UPDATE SET ord = excluded.ord, echo = excluded.echo`,
  );
  const dropEcho = db.prepare(`DELETE FROM ${table}_ob_echoes WHERE key = ? AND sourcekey = ?`);
  const keys = db.prepare<[], { key: string }>(`SELECT key FROM ${table}_ob_meta ORDER BY key`);
  const legacy = db.prepare<[string], { state: string }>(
    `SELECT state FROM ${table} WHERE key = ?`,
  );
  const dropLegacy = db.prepare(`DELETE FROM ${table} WHERE key = ?`);
  const legacyKeys = db.prepare<[], { key: string }>(`SELECT key FROM ${table}`);

  const cache = new Map<string, Cached>();
  const inTransaction = () => (db as { inTransaction?: boolean }).inTransaction === true;
  const synchronous = () =>
    (db.pragma("synchronous") as { synchronous?: number }[] | undefined)?.[0]?.synchronous;

  const remember = (key: string, v: number, doc: OutboxDoc, ord: number): Cached => {
    const c: Cached = {
      version: v,
      doc,
      entries: new Map(doc.entries.map((e) => [e.seq, { obj: e, copy: { ...e } }])),
      echoes: new Map(doc.echoes.map((e) => [e.sourcekey, e])),
      conflicts: JSON.stringify(doc.conflicts),
      ord,
    };
    cache.set(key, c);
    return c;
  };

  /** The pair's document as stored now (the cache when its version is current). */
  const load = (key: string): Cached => {
    const m = meta.get(key);
    const cached = cache.get(key);
    if (m && cached && cached.version === m.version) return cached;
    if (!m) {
      const old = legacy.get(key)?.state;
      if (old !== undefined) return migrate(key, parseDoc(key, old));
      return remember(key, 0, emptyDoc(), 0);
    }
    let doc: OutboxDoc;
    try {
      doc = {
        v: 1,
        next: m.next,
        cursor: m.cursor,
        entries: entries.all(key).map((r) => JSON.parse(r.entry) as OutboxEntry),
        conflicts: JSON.parse(m.conflicts) as OutboxDoc["conflicts"],
        echoes: echoes.all(key).map((r) => JSON.parse(r.echo) as Echo),
      };
    } catch {
      throw new StateError(`outbox ${key} is corrupt: a row is not JSON`);
    }
    // Checked like a document read from another process.
    parseDoc(key, JSON.stringify(doc));
    return remember(key, m.version, doc, m.ord);
  };

  /** Moves a document saved by an older version into rows. */
  const migrate = (key: string, doc: OutboxDoc): Cached => {
    for (const e of doc.entries) putEntry.run(key, e.seq, JSON.stringify(e));
    doc.echoes.forEach((e, i) => {
      putEcho.run(key, e.sourcekey, i + 1, JSON.stringify(e));
    });
    saveMeta.run(key, 1, doc.next, doc.cursor, doc.echoes.length, JSON.stringify(doc.conflicts));
    dropLegacy.run(key);
    return remember(key, 1, doc, doc.echoes.length);
  };

  /** Writes what `fn` changed in the cached document (rows it added, changed or removed). */
  const save = (key: string, c: Cached): boolean => {
    const doc = c.doc;
    const m = meta.get(key);
    let changed = doc.next !== (m?.next ?? 1);
    const seen = new Set<number>();
    for (const e of doc.entries) {
      seen.add(e.seq);
      const was = c.entries.get(e.seq);
      if (was && was.obj === e && sameEntry(was.copy, e)) continue;
      putEntry.run(key, e.seq, JSON.stringify(e));
      c.entries.set(e.seq, { obj: e, copy: { ...e } });
      changed = true;
    }
    for (const seq of [...c.entries.keys()]) {
      if (seen.has(seq)) continue;
      dropEntry.run(key, seq);
      c.entries.delete(seq);
      changed = true;
    }
    const echoKeys = new Set<string>();
    for (const e of doc.echoes) {
      echoKeys.add(e.sourcekey);
      if (c.echoes.get(e.sourcekey) === e) continue;
      putEcho.run(key, e.sourcekey, ++c.ord, JSON.stringify(e));
      c.echoes.set(e.sourcekey, e);
      changed = true;
    }
    for (const k of [...c.echoes.keys()]) {
      if (echoKeys.has(k)) continue;
      dropEcho.run(key, k);
      c.echoes.delete(k);
      changed = true;
    }
    const conflicts = JSON.stringify(doc.conflicts);
    if (conflicts !== c.conflicts || doc.cursor !== (m?.cursor ?? 0)) changed = true;
    if (!changed) return false;
    c.conflicts = conflicts;
    c.version = (m?.version ?? 0) + 1;
    saveMeta.run(key, c.version, doc.next, doc.cursor, c.ord, conflicts);
    return true;
  };

  const transact = db.transaction((key: string, fn: (doc: OutboxDoc) => unknown) => {
    const c = load(key);
    try {
      const result = fn(c.doc);
      save(key, c);
      return result;
    } catch (error) {
      // `fn` may have changed the cached document before it threw: forget it.
      cache.delete(key);
      throw error;
    }
  });

  return {
    read(key) {
      const c = load(key);
      if (version.get(key) === undefined && c.version === 0) return emptyDoc();
      // Copies of the lists: the caller may keep the document while the cache moves on (the
      // entries are shared: callers never change them outside `update`).
      const d = c.doc;
      return { ...d, entries: [...d.entries], echoes: [...d.echoes], conflicts: [...d.conflicts] };
    },
    update<R>(key: string, fn: (doc: OutboxDoc) => R, options: { replayable?: boolean } = {}): R {
      // WAL with synchronous = NORMAL: the commit is not fsynced; the next FULL commit (or a
      // checkpoint) makes it durable with everything before it. Only outside a transaction:
      // inside one (the mirror's) the pragma can't change.
      const relax = options.replayable === true && !inTransaction() && synchronous() === FULL;
      if (relax) db.pragma("synchronous = NORMAL");
      try {
        // BEGIN IMMEDIATE: another process's writer waits, so the version read is the latest.
        return transact.immediate(key, fn) as R;
      } catch (error) {
        cache.delete(key);
        throw error;
      } finally {
        if (relax) db.pragma("synchronous = FULL");
      }
    },
    keys() {
      const out = new Set(keys.all().map((r) => r.key));
      for (const r of legacyKeys.all()) out.add(r.key);
      return [...out].sort();
    },
  };
}
