/**
 * A local SQLite copy of a synced scope: the example importer to copy. Each row keeps the
 * metadata a two-way sync needs (the Q&A seed): where it came from (`source`), which source
 * changed it last (`updated_at_source`), when it was created and updated locally, and a stable
 * local id that survives updates (`id`), next to the backend's `sourcekey` and `change_key`.
 */

import type { Importer, SyncObject } from "../core/types.js";
import { checkTable } from "../stores/sqlite.js";
import { openSqlite, type SqliteDatabase } from "../stores/sqlite-driver.js";
import type { MassChangeGuard } from "../two-way/mass-change.js";
import type { Outbox } from "../two-way/outbox.js";
import type { BatchCallbacks } from "./batch.js";
import { defaultReadOf, type MirrorRow, timeOrderedId } from "./mirror-rows.js";
import { type MirrorEdits, type MirrorTwoWay, mirrorTwoWay } from "./mirror-two-way.js";

export type { MirrorRow } from "./mirror-rows.js";

export interface SqliteMirrorOptions {
  /** Names the origin of every row, e.g. `google:alice/primary`. */
  source: string;
  /** Table name. Default `mirror`. */
  table?: string;
  /** Reads an item's read flag from its data. Default: `data.read` when it is a boolean. */
  readOf?(obj: SyncObject): boolean | undefined;
  /**
   * Two-way sync: the sourcekey a row created through `edits.create` gets (pass the write
   * target's `keyFor`, so a create replayed after a crash finds its object). Default `local:<id>`.
   */
  keyFor?(localId: string): string;
}

export interface SqliteMirror {
  /** Per-change importer (each call its own statement); fine for small scopes and tests. */
  readonly importer: Importer;
  /** Batch callbacks for `runSync`: one transaction per batch (the fast path). */
  readonly callbacks: Required<
    Pick<
      BatchCallbacks,
      "onUpdated" | "onDeleted" | "onRead" | "onReset" | "onFullSyncBegin" | "onFullSyncEnd"
    >
  > & {
    /**
     * The mass-change guard for `runSync` (on by default: spread `callbacks` and a round that
     * would delete more than half of the rows, and more than 20, throws `MassChangeError`;
     * pass `confirmMassChange: true` to apply it). Override with `massChange: false`.
     */
    massChange: MassChangeGuard;
  };
  /** Every row of this mirror's source, ordered by sourcekey. */
  rows(): MirrorRow[];
  get(sourcekey: string): MirrorRow | undefined;
  count(): number;
  /** Deletes every row of this mirror's source (what a reset does), except rows with pending local edits. */
  clear(): void;
  /**
   * Two-way sync: local edits of rows, each recorded in the outbox (`outbox`, pair = `source`)
   * in the same transaction. Pulls leave rows with pending edits alone and do not bounce our
   * own pushes back; push with `push(target, mirror.outbox, { pair: source, ...mirror.pushCallbacks })`.
   */
  readonly edits: MirrorEdits;
  /** The outbox of this mirror's source (a table `<table>_outbox` in the same database). */
  readonly outbox: Outbox;
  /** Write-back callbacks for `push`: results and conflict resolutions update the rows. */
  readonly pushCallbacks: MirrorTwoWay["pushCallbacks"];
  /** The underlying database. */
  readonly db: SqliteDatabase;
  /** Closes the database if the mirror opened it; safe twice. */
  close(): void;
}

interface RawRow {
  source: string;
  sourcekey: string;
  id: string;
  type: string;
  parent_key: string | null;
  change_key: string | null;
  data: string;
  is_read: number | null;
  created_locally: string;
  updated_locally: string;
  updated_at_source: string;
}

/**
 * Opens (or creates) a mirror table in a SQLite file.
 * @example
 * const mirror = createSqliteMirror("mirror.sqlite", { source: "memory:alice" });
 * await runSync(store.items, { ...mirror.callbacks, store: states });
 * mirror.count(); // 5000
 */
export function createSqliteMirror(
  file: string | SqliteDatabase,
  options: SqliteMirrorOptions,
): SqliteMirror {
  const table = checkTable(options.table ?? "mirror");
  const owned = typeof file === "string";
  const db = typeof file === "string" ? openSqlite(file) : file;
  if (owned) {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    db.pragma("cache_size = -65536"); // 64 MiB: keeps a 1M-row mirror's indexes in memory
  }
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
    source TEXT NOT NULL,
    sourcekey TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    parent_key TEXT,
    change_key TEXT,
    data TEXT NOT NULL,
    is_read INTEGER,
    created_locally TEXT NOT NULL,
    updated_locally TEXT NOT NULL,
    updated_at_source TEXT NOT NULL,
    sync_gen INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, sourcekey)
  );
  CREATE INDEX IF NOT EXISTS ${table}_parent ON ${table} (source, parent_key);
  CREATE TABLE IF NOT EXISTS ${table}_generation (source TEXT PRIMARY KEY, gen INTEGER NOT NULL);`);
  const columns = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
  if (!columns.some((c) => c.name === "sync_gen")) {
    // A table made before full syncs were swept: every row starts in generation 0.
    db.exec(`ALTER TABLE ${table} ADD COLUMN sync_gen INTEGER NOT NULL DEFAULT 0`);
  }
  const { source } = options;
  const readOf = options.readOf ?? defaultReadOf;
  const upsert = db.prepare(`INSERT INTO ${table}
    (source, sourcekey, id, type, parent_key, change_key, data, is_read, created_locally, updated_locally, updated_at_source, sync_gen)
    VALUES (@source, @sourcekey, @id, @type, @parentKey, @changeKey, @data, @isRead, @now, @now, @source, @gen)
    ON CONFLICT (source, sourcekey) DO UPDATE SET
      type = excluded.type, parent_key = excluded.parent_key, change_key = excluded.change_key,
      data = excluded.data, is_read = excluded.is_read, updated_locally = excluded.updated_locally,
      updated_at_source = excluded.updated_at_source, sync_gen = excluded.sync_gen`);
  const removeOne = db.prepare(`DELETE FROM ${table} WHERE source = ? AND sourcekey = ?`);
  // A folder delete implies its subtree (DESIGN.md): remove every descendant too.
  const removeTree = db.prepare(`WITH RECURSIVE tree(k) AS (
      SELECT ? UNION SELECT m.sourcekey FROM ${table} m JOIN tree ON m.parent_key = tree.k WHERE m.source = ?
    ) DELETE FROM ${table} WHERE source = ? AND sourcekey IN (SELECT k FROM tree)`);
  // The read flag lives in `is_read`; a `read` boolean inside the data is kept in step with it.
  const setRead = db.prepare(
    `UPDATE ${table} SET is_read = ?, updated_locally = ?, updated_at_source = source,
      data = CASE WHEN json_type(data, '$.read') IN ('true', 'false')
        THEN json_set(data, '$.read', json(?)) ELSE data END
      WHERE source = ? AND sourcekey = ?`,
  );
  const selectAll = db.prepare<[string], RawRow>(
    `SELECT * FROM ${table} WHERE source = ? ORDER BY sourcekey`,
  );
  const selectOne = db.prepare<[string, string], RawRow>(
    `SELECT * FROM ${table} WHERE source = ? AND sourcekey = ?`,
  );
  const countRows = db.prepare<[string], { n: number }>(
    `SELECT count(*) AS n FROM ${table} WHERE source = ?`,
  );
  const clearAll = db.prepare(
    `DELETE FROM ${table} WHERE source = ? AND sourcekey NOT IN (SELECT value FROM json_each(?))`,
  );
  // Full syncs are swept by generation: rows a full sync did not touch are gone on the server.
  // The generation is stored, so a full sync resumed by another process sweeps the same way.
  const readGeneration = db.prepare<[string], { gen: number }>(
    `SELECT gen FROM ${table}_generation WHERE source = ?`,
  );
  const writeGeneration = db.prepare(
    `INSERT INTO ${table}_generation (source, gen) VALUES (?, ?)
      ON CONFLICT (source) DO UPDATE SET gen = excluded.gen`,
  );
  // Rows with pending local edits stay: the server does not have them (yet).
  const sweep = db.prepare(
    `DELETE FROM ${table} WHERE source = ? AND sync_gen < ? AND sourcekey NOT IN (SELECT value FROM json_each(?))`,
  );
  let gen = readGeneration.get(source)?.gen ?? 0;
  const beginFullSync = () => {
    gen++;
    writeGeneration.run(source, gen);
  };
  const two = mirrorTwoWay({
    db,
    table,
    source,
    keyFor: options.keyFor ?? ((id) => `local:${id}`),
    newId: timeOrderedId,
    readOf,
  });
  const endFullSync = () => {
    sweep.run(source, gen, two.pendingJson());
  };
  const sweepCount = db.prepare<[string, number, string], { n: number }>(
    `SELECT count(*) AS n FROM ${table} WHERE source = ? AND sync_gen < ? AND sourcekey NOT IN (SELECT value FROM json_each(?))`,
  );

  const update = (obj: SyncObject, now: string) => {
    const r = readOf(obj);
    upsert.run({
      source,
      sourcekey: obj.sourcekey,
      id: timeOrderedId(),
      type: obj.type,
      parentKey: obj.parentKey ?? null,
      changeKey: obj.changeKey ?? null,
      data: JSON.stringify(obj.data ?? null),
      isRead: r === undefined ? null : r ? 1 : 0,
      now,
      gen,
    });
  };
  const remove = (sourcekey: string, type: string | undefined) => {
    if (type === "folder") removeTree.run(sourcekey, source, source);
    else removeOne.run(source, sourcekey);
  };
  const markRead = (sourcekey: string, isRead: boolean, now: string) => {
    setRead.run(isRead ? 1 : 0, now, isRead ? "true" : "false", source, sourcekey);
  };
  const clear = () => {
    clearAll.run(source, two.pendingJson());
  };

  // Each pull write checks the outbox in its own transaction (pending local edit → leave it).
  // A row the pull leaves alone still counts as seen by a running full sync (not swept).
  const touch = db.prepare(`UPDATE ${table} SET sync_gen = ? WHERE source = ? AND sourcekey = ?`);
  const onUpdated = db.transaction((records: SyncObject[]) => {
    const now = new Date().toISOString();
    two.guarded((g) => {
      for (const r of records) {
        if (g.skip(r.sourcekey, r)) touch.run(gen, source, r.sourcekey);
        else update(r, now);
      }
    });
  });
  const onDeleted = db.transaction((keys: string[], objects?: { type?: string }[]) => {
    two.guarded((g) => {
      for (const [i, k] of keys.entries()) if (!g.skip(k)) remove(k, objects?.[i]?.type);
    });
  });
  const onRead = db.transaction((changes: { sourcekey: string; isRead: boolean }[]) => {
    const now = new Date().toISOString();
    two.guarded((g) => {
      for (const c of changes) if (!g.skip(c.sourcekey)) markRead(c.sourcekey, c.isRead, now);
    });
  });

  const toRow = (r: RawRow): MirrorRow => ({
    source: r.source,
    sourcekey: r.sourcekey,
    id: r.id,
    type: r.type,
    parentKey: r.parent_key,
    changeKey: r.change_key,
    data: JSON.parse(r.data) as unknown,
    isRead: r.is_read === null ? null : r.is_read === 1,
    createdLocally: r.created_locally,
    updatedLocally: r.updated_locally,
    updatedAtSource: r.updated_at_source,
  });

  let closed = false;
  return {
    db,
    importer: {
      update: (obj) => onUpdated([obj]),
      delete: (obj) => onDeleted([obj.sourcekey], [obj]),
      read: (obj, isRead) => onRead([{ sourcekey: obj.sourcekey, isRead }]),
      // A move is an upsert under its new parent (as `onUpdated` gets it in batches): split into
      // a delete and an update, the delete would consume the echo of our own version.
      moved: (obj) => onUpdated([obj]),
      reset: clear,
      beginFullSync,
      endFullSync,
    },
    callbacks: {
      onUpdated: (records) => onUpdated(records),
      onDeleted: (keys, objects) => onDeleted(keys, objects),
      onRead: (changes) => onRead(changes),
      // The copy stays readable through a forced resync: the full sync that follows sweeps what
      // is gone, and that sweep is counted by the mass-change guard (a reset that emptied the
      // copy at once would delete everything behind the guard's back).
      onReset: () => {},
      onFullSyncBegin: beginFullSync,
      onFullSyncEnd: endFullSync,
      massChange: {
        size: () => countRows.get(source)?.n ?? 0,
        sweepSize: () => sweepCount.get(source, gen, two.pendingJson())?.n ?? 0,
      },
    },
    rows: () => selectAll.all(source).map(toRow),
    get: (sourcekey) => {
      const r = selectOne.get(source, sourcekey);
      return r ? toRow(r) : undefined;
    },
    count: () => countRows.get(source)?.n ?? 0,
    clear,
    edits: two.edits,
    outbox: two.outbox,
    pushCallbacks: two.pushCallbacks,
    close() {
      if (closed || !owned) return;
      closed = true;
      db.close();
    },
  };
}
