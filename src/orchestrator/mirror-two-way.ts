/**
 * The SQLite mirror's two-way half: an outbox table next to the mirror table, local edits that
 * change a row and record its outbox entry in one transaction, the pull-side guard (pending
 * local edits and echoes of our pushes are not overwritten), and the pusher's write-back.
 */
import { NotFoundError } from "../core/errors.js";
import type { ObjectType, SyncObject } from "../core/types.js";
import { createSqliteStateStore } from "../stores/sqlite.js";
import type { SqliteDatabase } from "../stores/sqlite-driver.js";
import { sqliteOutboxRows } from "../stores/sqlite-outbox.js";
import {
  forgetEcho,
  hasEcho,
  hasPending,
  isEcho,
  type OutboxDoc,
  pendingKeys,
  reassign,
  record,
} from "../two-way/log.js";
import type { MassChangeGuard } from "../two-way/mass-change.js";
import { createOutbox, type Outbox } from "../two-way/outbox.js";
import type { PushOptions } from "../two-way/push.js";
import type { LocalChange } from "../two-way/types.js";
import { localChange, withReadFlag } from "./mirror-edits.js";

/** Local edits of mirror rows; each changes the row and queues its push in one transaction. */
export interface MirrorEdits {
  /** A new object; its sourcekey is `keyFor(id)` (client-chosen). Returns the row's id. */
  create(input: { data: unknown; parentKey?: string; type?: ObjectType }): string;
  /** Replaces the data of the row with this id. */
  update(id: string, data: unknown): void;
  /** Deletes the row with this id. */
  remove(id: string): void;
  markRead(id: string, isRead: boolean): void;
  move(id: string, parentKey: string): void;
}

export interface MirrorTwoWay {
  outbox: Outbox;
  edits: MirrorEdits;
  pushCallbacks: Required<Pick<PushOptions, "onPushed" | "onRemote">> & {
    massChange: MassChangeGuard;
  };
  /** Runs `fn` in a transaction with the pair's outbox document loaded (what changed is saved). */
  guarded<R>(fn: (guard: PullGuard) => R): R;
  /** Sourcekeys with pending local changes, as JSON (for `NOT IN json_each(?)`). */
  pendingJson(): string;
}

export interface PullGuard {
  /** True when the pull must leave this object alone (pending local edit, or our echo). */
  skip(sourcekey: string, obj?: SyncObject): boolean;
}

interface Deps {
  db: SqliteDatabase;
  table: string;
  source: string;
  keyFor: (localId: string) => string;
  newId: () => string;
  readOf: (obj: SyncObject) => boolean | undefined;
}

interface Row {
  id: string;
  sourcekey: string;
  type: string;
  parent_key: string | null;
  change_key: string | null;
  data: string;
  is_read: number | null;
}

export function mirrorTwoWay(d: Deps): MirrorTwoWay {
  const { db, table, source } = d;
  const outboxTable = `${table}_outbox`;
  // The outbox's rows live next to the mirror table; edits write them in their transaction.
  const rows = sqliteOutboxRows(db, outboxTable);
  const outbox = createOutbox(createSqliteStateStore(db, { table: outboxTable }), { rows });
  const key = `outbox:${source}`;
  const byId = db.prepare<[string, string], Row>(
    `SELECT * FROM ${table} WHERE source = ? AND id = ?`,
  );
  const insert = db.prepare(`INSERT INTO ${table}
    (source, sourcekey, id, type, parent_key, change_key, data, is_read, created_locally, updated_locally, updated_at_source, sync_gen)
    VALUES (@source, @sourcekey, @id, @type, @parentKey, @changeKey, @data, @isRead, @now, @now, @updatedAt,
      (SELECT coalesce(max(gen), 0) FROM ${table}_generation WHERE source = @source))`);
  const setRow = db.prepare(`UPDATE ${table} SET sourcekey = @sourcekey, type = @type,
      parent_key = @parentKey, change_key = @changeKey, data = @data, is_read = @isRead,
      updated_locally = @now, updated_at_source = @updatedAt,
      sync_gen = (SELECT coalesce(max(gen), 0) FROM ${table}_generation WHERE source = @source)
      WHERE source = @source AND id = @id`);
  const deleteById = db.prepare(`DELETE FROM ${table} WHERE source = ? AND id = ?`);
  const countRows = db.prepare<[string], { n: number }>(
    `SELECT count(*) AS n FROM ${table} WHERE source = ?`,
  );
  const otherByKey = db.prepare<[string, string, string], { id: string }>(
    `SELECT id FROM ${table} WHERE source = ? AND sourcekey = ? AND id <> ?`,
  );

  const row = (id: string): Row => {
    const r = byId.get(source, id);
    if (!r) throw new NotFoundError(`mirror ${source}: no row with id ${JSON.stringify(id)}`);
    return r;
  };
  const write = (r: Row, updatedAt: string) => {
    setRow.run({
      source,
      id: r.id,
      sourcekey: r.sourcekey,
      type: r.type,
      parentKey: r.parent_key,
      changeKey: r.change_key,
      data: r.data,
      isRead: r.is_read,
      now: new Date().toISOString(),
      updatedAt,
    });
  };
  /** Changes a row and records its outbox entry in one transaction. */
  const transaction = db.transaction((change: (doc: OutboxDoc) => LocalChange | undefined) => {
    rows.update(key, (doc) => {
      const c = change(doc);
      if (c) record(doc, c, Date.now());
    });
  });
  const edit = (change: (doc: OutboxDoc) => LocalChange | undefined) => {
    transaction(change);
    // After the commit: a watcher pushes what it can read.
    outbox.announce(source);
  };
  const isReadOf = (obj: SyncObject): number | null => {
    const v = d.readOf(obj);
    return v === undefined ? null : v ? 1 : 0;
  };

  const edits: MirrorEdits = {
    create({ data, parentKey, type = "item" }) {
      const id = d.newId();
      const sourcekey = d.keyFor(id);
      edit(() => {
        const obj: SyncObject = { sourcekey, type, parentKey, data };
        insert.run({
          source,
          sourcekey,
          id,
          type,
          parentKey: parentKey ?? null,
          changeKey: null,
          data: JSON.stringify(data ?? null),
          isRead: isReadOf(obj),
          now: new Date().toISOString(),
          updatedAt: "local",
        });
        return localChange.create(id, sourcekey, parentKey, data);
      });
      return id;
    },
    update(id, data) {
      edit(() => {
        const r = row(id);
        const obj: SyncObject = {
          sourcekey: r.sourcekey,
          type: r.type as ObjectType,
          parentKey: r.parent_key ?? undefined,
          data,
        };
        write({ ...r, data: JSON.stringify(data ?? null), is_read: isReadOf(obj) }, "local");
        return localChange.update(r, data);
      });
    },
    remove(id) {
      edit(() => {
        const r = row(id);
        deleteById.run(source, id);
        return localChange.delete(r);
      });
    },
    markRead(id, isRead) {
      edit(() => {
        const r = row(id);
        const data = JSON.parse(r.data) as unknown;
        const next = withReadFlag(data, isRead);
        write(
          { ...r, data: next === data ? r.data : JSON.stringify(next), is_read: isRead ? 1 : 0 },
          "local",
        );
        return localChange.read(r, isRead);
      });
    },
    move(id, parentKey) {
      edit(() => {
        const r = row(id);
        write({ ...r, parent_key: parentKey }, "local");
        return localChange.move(r, parentKey);
      });
    },
  };

  const fromObject = (id: string, obj: SyncObject): Row => ({
    id,
    sourcekey: obj.sourcekey,
    type: obj.type,
    parent_key: obj.parentKey ?? null,
    change_key: obj.changeKey ?? null,
    data: JSON.stringify(obj.data ?? null),
    is_read: isReadOf(obj),
  });

  /**
   * Same object, one row: another row holding `sourcekey` (a pull delivered it under the key
   * the server picked) is merged into the row `keep`. The app may have edited that row already:
   * its pending changes become `keep`'s (pushed later, written back to that row).
   */
  const mergeInto = (keep: string, sourcekey: string) => {
    const other = otherByKey.get(source, sourcekey, keep);
    if (!other) return;
    rows.update(key, (doc) => reassign(doc, other.id, keep));
    deleteById.run(source, other.id);
  };
  const onPushed = db.transaction(
    (
      entry: { localId: string },
      result: { sourcekey: string; changeKey?: string; object?: SyncObject } | null,
      info: { last: boolean },
    ) => {
      const r = byId.get(source, entry.localId);
      if (!r || !result) return;
      // A server that picks the key (IMAP's APPENDUID, Graph's ids) may have had the object
      // pulled under it before this write-back (a crash between its write and the commit): same
      // object, one row.
      if (result.sourcekey !== r.sourcekey) mergeInto(r.id, result.sourcekey);
      if (info.last && result.object) {
        // The server's version whole: the pull skipped this row while it was pending.
        write(fromObject(r.id, result.object), source);
      } else {
        write({ ...r, sourcekey: result.sourcekey, change_key: result.changeKey ?? null }, "local");
      }
    },
  );
  const onRemote = db.transaction((entry: { localId: string }, remote: SyncObject | null) => {
    deleteById.run(source, entry.localId);
    if (!remote) return;
    mergeInto(entry.localId, remote.sourcekey);
    const r = fromObject(entry.localId, remote);
    insert.run({
      source,
      sourcekey: r.sourcekey,
      id: r.id,
      type: r.type,
      parentKey: r.parent_key,
      changeKey: r.change_key,
      data: r.data,
      isRead: r.is_read,
      now: new Date().toISOString(),
      updatedAt: source,
    });
  });

  return {
    outbox,
    edits,
    pushCallbacks: {
      onPushed: (entry, result, info) => onPushed(entry, result, info),
      onRemote: (entry, remote) => onRemote(entry, remote),
      // The server's size as the app knows it: its rows, less the creates it has not pushed,
      // plus the rows it deleted and has not pushed.
      massChange: {
        size() {
          const doc = rows.read(key);
          let n = countRows.get(source)?.n ?? 0;
          for (const e of doc.entries) n += e.kind === "delete" ? 1 : e.kind === "create" ? -1 : 0;
          return n;
        },
      },
    },
    guarded<R>(fn: (guard: PullGuard) => R): R {
      return rows.update(key, (doc) => {
        if (doc.entries.length === 0 && doc.echoes.length === 0) {
          return fn({ skip: () => false });
        }
        return fn({
          skip(sourcekey, obj) {
            if (hasPending(doc, sourcekey)) return true;
            if (!hasEcho(doc, sourcekey)) return false;
            const echo = obj !== undefined && isEcho(doc, obj);
            forgetEcho(doc, sourcekey);
            return echo;
          },
        });
      });
    },
    pendingJson() {
      return JSON.stringify([...pendingKeys(rows.read(key))]);
    },
  };
}
