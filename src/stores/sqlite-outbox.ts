/**
 * The row outbox (see two-way/outbox-rows.ts) in SQLite. `update(pair, fn)` applies `fn` to the
 * pair's document in one `BEGIN IMMEDIATE` transaction and writes the rows it changed, so
 * writers in several processes keep the outbox's compare-and-set guarantee (a version number
 * per pair; a stale cache is reloaded).
 */
import { type OutboxDoc, parseDoc } from "../two-way/log.js";
import {
  changes,
  docFromRows,
  loaded,
  type MetaRow,
  type OutboxRows,
  type RowSnapshot,
  readCopy,
  saved,
  unsaved,
} from "../two-way/outbox-rows.js";
import type { SqliteDatabase } from "./sqlite-driver.js";

export type { OutboxRows } from "../two-way/outbox-rows.js";

/** `PRAGMA synchronous` values. */
const FULL = 2;

/** The SQLite row outbox: synchronous (better-sqlite3), inside the caller's transaction if any. */
export interface SqliteOutboxRows extends OutboxRows {
  read(key: string): OutboxDoc;
  update<R>(key: string, fn: (doc: OutboxDoc) => R, options?: { replayable?: boolean }): R;
  keys(): string[];
}

/**
 * Row tables `<table>_ob_meta`, `<table>_ob_entries`, `<table>_ob_echoes` next to a state
 * store's table. A pair's document left in the state table by an older version (key
 * `<prefix><pair>`) is read from there and moved into rows by the pair's first commit.
 */
export function sqliteOutboxRows(db: SqliteDatabase, table: string): SqliteOutboxRows {
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
  const meta = db.prepare<[string], MetaRow>(
    `SELECT version, next, cursor, ord, conflicts FROM ${table}_ob_meta WHERE key = ?`,
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

  const cache = new Map<string, RowSnapshot>();
  const inTransaction = () => (db as { inTransaction?: boolean }).inTransaction === true;
  // Prepared once: `db.pragma()` prepares its statement on every call (three per commit).
  const getSync = db.prepare<[], { synchronous: number }>("PRAGMA synchronous");
  const setNormal = db.prepare("PRAGMA synchronous = NORMAL");
  const setFull = db.prepare("PRAGMA synchronous = FULL");
  const synchronous = () => getSync.get()?.synchronous;

  /** The pair's document as stored now (the cache when its version is current). */
  const load = (key: string): RowSnapshot => {
    const m = meta.get(key);
    const cached = cache.get(key);
    // No meta row: read again (a document may have been left in the state table meanwhile).
    if (m && cached && cached.meta.version === m.version) return cached;
    let s: RowSnapshot;
    if (!m) {
      // A document an older version kept whole: its first commit moves it into rows.
      const old = legacy.get(key)?.state;
      s = unsaved(old === undefined ? undefined : parseDoc(key, old));
    } else {
      const doc = docFromRows(
        key,
        m,
        entries.all(key).map((r) => r.entry),
        echoes.all(key).map((r) => r.echo),
      );
      s = loaded(m, doc);
    }
    cache.set(key, s);
    return s;
  };

  /** Writes what `fn` changed in the snapshot's document. */
  const save = (key: string, s: RowSnapshot): void => {
    const ch = changes(s);
    if (!ch) return;
    for (const seq of ch.dropEntries) dropEntry.run(key, seq);
    for (const e of ch.putEntries) putEntry.run(key, e.seq, JSON.stringify(e));
    for (const k of ch.dropEchoes) dropEcho.run(key, k);
    for (const { echo, ord } of ch.putEchoes) {
      putEcho.run(key, echo.sourcekey, ord, JSON.stringify(echo));
    }
    const m: MetaRow = ch.meta;
    saveMeta.run(key, m.version, m.next, m.cursor, m.ord, m.conflicts);
    if (s.meta.version === 0) dropLegacy.run(key);
    saved(s, ch);
  };

  const transact = db.transaction((key: string, fn: (doc: OutboxDoc) => unknown) => {
    const s = load(key);
    const result = fn(s.doc);
    save(key, s);
    return result;
  });

  return {
    read: (key) => readCopy(load(key)),
    update(key, fn, options = {}) {
      // WAL with synchronous = NORMAL: the commit is not fsynced; the next FULL commit (or a
      // checkpoint) makes it durable with everything before it. Only outside a transaction:
      // inside one (the mirror's) the pragma can't change.
      const relax = options.replayable === true && !inTransaction() && synchronous() === FULL;
      if (relax) setNormal.run();
      try {
        // BEGIN IMMEDIATE: another process's writer waits, so the version read is the latest.
        return transact.immediate(key, fn) as ReturnType<typeof fn>;
      } catch (error) {
        // `fn` may have changed the cached document before it (or the commit) failed.
        cache.delete(key);
        throw error;
      } finally {
        if (relax) setFull.run();
      }
    },
    keys() {
      const out = new Set(keys.all().map((r) => r.key));
      for (const r of legacyKeys.all()) out.add(r.key);
      return [...out].sort();
    },
  };
}
