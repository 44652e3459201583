import { ArgumentError } from "../core/errors.js";
import { openSqlite, type SqliteDatabase } from "./sqlite-driver.js";
import { type OutboxRows, sqliteOutboxRows } from "./sqlite-outbox.js";
import type { StateStore } from "./types.js";

export interface SqliteStateStoreOptions {
  /** Table name (letters, digits, underscores). Default `deltasync_state`. */
  table?: string;
}

/**
 * The embedded default: states in a SQLite table (better-sqlite3, WAL mode). Compare-and-set is
 * one conditional `UPDATE`/`INSERT`, atomic across processes sharing the file.
 * @example
 * const store = createSqliteStateStore("./deltasync.sqlite");
 */
export function createSqliteStateStore(
  file: string | SqliteDatabase,
  options: SqliteStateStoreOptions = {},
): StateStore {
  const table = checkTable(options.table ?? "deltasync_state");
  const owned = typeof file === "string";
  const db = typeof file === "string" ? openSqlite(file, "state file") : file;
  if (owned) {
    db.pragma("journal_mode = WAL");
    // A saved state must survive power loss, not just a crash: fsync every commit.
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
  }
  db.exec(
    `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, state TEXT NOT NULL, saved_at TEXT NOT NULL)`,
  );
  const select = db.prepare<[string], { state: string }>(
    `SELECT state FROM ${table} WHERE key = ?`,
  );
  const insert = db.prepare(
    `INSERT INTO ${table} (key, state, saved_at) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING`,
  );
  const update = db.prepare(
    `UPDATE ${table} SET state = ?, saved_at = ? WHERE key = ? AND state = ?`,
  );
  const remove = db.prepare(`DELETE FROM ${table} WHERE key = ?`);
  const list = db.prepare<[], { key: string }>(`SELECT key FROM ${table} ORDER BY key`);
  let closed = false;
  let rows: OutboxRows | undefined;
  return {
    outboxRows: () => {
      rows ??= sqliteOutboxRows(db, table);
      return rows;
    },
    async get(key) {
      return select.get(key)?.state;
    },
    async compareAndSet(key, expected, next) {
      const now = new Date().toISOString();
      const result =
        expected === undefined ? insert.run(key, next, now) : update.run(next, now, key, expected);
      return result.changes === 1;
    },
    async delete(key) {
      remove.run(key);
    },
    async keys() {
      return list.all().map((r) => r.key);
    },
    async close() {
      if (closed || !owned) return;
      closed = true;
      db.close();
    },
  };
}

export function checkTable(table: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(table)) {
    throw new ArgumentError(`table must be a plain SQL identifier, got ${JSON.stringify(table)}`);
  }
  return table;
}
