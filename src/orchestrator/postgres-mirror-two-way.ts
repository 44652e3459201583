/**
 * The PostgreSQL mirror's two-way half, as the SQLite mirror's: a row outbox next to the mirror
 * table (`<table>_outbox_ob_*`), local edits that change a row and record its outbox entry in one
 * transaction, the pull-side guard (run inside the pull's transaction), and the pusher's
 * write-back.
 */
import { NotFoundError } from "../core/errors.js";
import type { ObjectType, SyncObject } from "../core/types.js";
import type { PgClient, PgPool } from "../stores/postgres.js";
import { createPostgresStateStore } from "../stores/postgres.js";
import { postgresOutboxRows } from "../stores/postgres-outbox.js";
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
export interface PostgresMirrorEdits {
  /** A new object; its sourcekey is `keyFor(id)` (client-chosen). Resolves with the row's id. */
  create(input: { data: unknown; parentKey?: string; type?: ObjectType }): Promise<string>;
  /** Replaces the data of the row with this id. */
  update(id: string, data: unknown): Promise<void>;
  /** Deletes the row with this id. */
  remove(id: string): Promise<void>;
  markRead(id: string, isRead: boolean): Promise<void>;
  move(id: string, parentKey: string): Promise<void>;
}

/** What a pull inside its transaction asks of the outbox. */
export interface PostgresPullGuard {
  /** True when the pull must leave this object alone (pending local edit, or our echo). */
  skip(sourcekey: string, obj?: SyncObject): boolean;
  /** Sourcekeys with pending local changes (kept by sweeps and resets). */
  pending(): string[];
}

export interface PostgresMirrorTwoWay {
  outbox: Outbox;
  edits: PostgresMirrorEdits;
  pushCallbacks: Required<Pick<PushOptions, "onPushed" | "onRemote">> & {
    massChange: MassChangeGuard;
  };
  /** Runs a pull's writes on `client` (in its open transaction) with the outbox locked. */
  guarded<R>(client: PgClient, fn: (guard: PostgresPullGuard) => Promise<R>): Promise<R>;
  /** Call once the transaction given to `guarded` committed or rolled back. */
  ended(committed: boolean): void;
}

interface Deps {
  pool: PgPool;
  table: string;
  source: string;
  keyFor: (localId: string) => string;
  newId: () => string;
  readOf: (obj: SyncObject) => boolean | undefined;
  /** The mirror's transaction: commits when `fn` resolves with a value, else rolls back. */
  transaction<R>(fn: (client: PgClient) => Promise<R | undefined>): Promise<R | undefined>;
}

interface Row {
  id: string;
  sourcekey: string;
  type: string;
  parent_key: string | null;
  change_key: string | null;
  data: unknown;
  is_read: boolean | null;
}

export async function postgresMirrorTwoWay(d: Deps): Promise<PostgresMirrorTwoWay> {
  const { pool, table, source } = d;
  const outboxTable = `${table}_outbox`;
  const rows = postgresOutboxRows(pool, outboxTable);
  // The tables first, under the advisory lock (a bare CREATE TABLE IF NOT EXISTS can collide).
  await rows.ready();
  const states = await createPostgresStateStore({ pool, table: outboxTable });
  const outbox = createOutbox(states, { rows });
  const key = `outbox:${source}`;
  const gen = `(SELECT coalesce(max(gen), 0) FROM ${table}_generation WHERE source = $1)`;

  /** Runs `fn` in one transaction with the pair's outbox document locked and saved after it. */
  const withOutbox = async <R>(
    fn: (client: PgClient, doc: OutboxDoc) => Promise<R>,
  ): Promise<R> => {
    let entered = false;
    try {
      const out = await d.transaction(async (client) => {
        entered = true;
        return { value: await rows.inTransaction(client, key, (doc) => fn(client, doc)) };
      });
      rows.ended(key, true);
      return (out as { value: R }).value;
    } catch (error) {
      if (entered) rows.ended(key, false);
      throw error;
    }
  };

  const row = async (client: PgClient, id: string): Promise<Row> => {
    const r = await client.query(
      `SELECT id, sourcekey, type, parent_key, change_key, data, is_read FROM ${table}
        WHERE source = $1 AND id = $2 FOR UPDATE`,
      [source, id],
    );
    const found = r.rows[0] as Row | undefined;
    if (!found) throw new NotFoundError(`mirror ${source}: no row with id ${JSON.stringify(id)}`);
    return found;
  };
  /** Writes a row's fields (by id); `updatedAt` is `"local"` for an app edit, else the source. */
  const write = (client: PgClient, r: Row, updatedAt: string) =>
    client.query(
      `UPDATE ${table} SET sourcekey = $3, type = $4, parent_key = $5, change_key = $6,
        data = $7::jsonb, is_read = $8, updated_locally = now(), updated_at_source = $9,
        sync_gen = ${gen} WHERE source = $1 AND id = $2`,
      [
        source,
        r.id,
        r.sourcekey,
        r.type,
        r.parent_key,
        r.change_key,
        JSON.stringify(r.data ?? null),
        r.is_read,
        updatedAt,
      ],
    );
  const insert = (client: PgClient, r: Row, updatedAt: string) =>
    client.query(
      `INSERT INTO ${table} (source, sourcekey, id, type, parent_key, change_key, data, is_read,
          created_locally, updated_locally, updated_at_source, sync_gen)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, now(), now(), $9, ${gen})
        ON CONFLICT (source, sourcekey) DO UPDATE SET id = excluded.id, type = excluded.type,
          parent_key = excluded.parent_key, change_key = excluded.change_key, data = excluded.data,
          is_read = excluded.is_read, updated_locally = excluded.updated_locally,
          updated_at_source = excluded.updated_at_source, sync_gen = excluded.sync_gen`,
      [
        source,
        r.sourcekey,
        r.id,
        r.type,
        r.parent_key,
        r.change_key,
        JSON.stringify(r.data ?? null),
        r.is_read,
        updatedAt,
      ],
    );
  const readOf = (r: Pick<Row, "sourcekey" | "type" | "parent_key" | "data">) =>
    d.readOf({
      sourcekey: r.sourcekey,
      type: r.type as ObjectType,
      parentKey: r.parent_key ?? undefined,
      data: r.data,
    }) ?? null;
  const fromObject = (id: string, obj: SyncObject): Row => {
    const r = {
      id,
      sourcekey: obj.sourcekey,
      type: obj.type,
      parent_key: obj.parentKey ?? null,
      change_key: obj.changeKey ?? null,
      data: obj.data ?? null,
    };
    return { ...r, is_read: readOf(r) };
  };

  /** Changes a row and records its outbox entry in one transaction, then tells watchers. */
  const edit = async (change: (client: PgClient) => Promise<LocalChange>) => {
    await withOutbox(async (client, doc) => {
      record(doc, await change(client), Date.now());
    });
    outbox.announce(source);
  };

  const edits: PostgresMirrorEdits = {
    async create({ data, parentKey, type = "item" }) {
      const id = d.newId();
      const sourcekey = d.keyFor(id);
      await edit(async (client) => {
        const r = { id, sourcekey, type, parent_key: parentKey ?? null, change_key: null, data };
        await insert(client, { ...r, is_read: readOf(r) }, "local");
        return localChange.create(id, sourcekey, parentKey, data);
      });
      return id;
    },
    update: (id, data) =>
      edit(async (client) => {
        const r = await row(client, id);
        const next = { ...r, data };
        await write(client, { ...next, is_read: readOf(next) }, "local");
        return localChange.update(r, data);
      }),
    remove: (id) =>
      edit(async (client) => {
        const r = await row(client, id);
        await client.query(`DELETE FROM ${table} WHERE source = $1 AND id = $2`, [source, id]);
        return localChange.delete(r);
      }),
    markRead: (id, isRead) =>
      edit(async (client) => {
        const r = await row(client, id);
        await write(client, { ...r, data: withReadFlag(r.data, isRead), is_read: isRead }, "local");
        return localChange.read(r, isRead);
      }),
    move: (id, parentKey) =>
      edit(async (client) => {
        const r = await row(client, id);
        await write(client, { ...r, parent_key: parentKey }, "local");
        return localChange.move(r, parentKey);
      }),
  };

  /**
   * Same object, one row: another row holding `sourcekey` (a pull delivered it under the key the
   * server picked) is merged into the row `keep`. The app may have edited that row already: its
   * pending changes become `keep`'s (pushed later, written back to that row).
   */
  const mergeInto = async (client: PgClient, doc: OutboxDoc, keep: string, sourcekey: string) => {
    const other = await client.query(
      `SELECT id FROM ${table} WHERE source = $1 AND sourcekey = $2 AND id <> $3 FOR UPDATE`,
      [source, sourcekey, keep],
    );
    const id = other.rows[0]?.id as string | undefined;
    if (id === undefined) return;
    reassign(doc, id, keep);
    await client.query(`DELETE FROM ${table} WHERE source = $1 AND id = $2`, [source, id]);
  };
  const onPushed: PostgresMirrorTwoWay["pushCallbacks"]["onPushed"] = async (
    entry,
    result,
    info,
  ) => {
    if (!result) return;
    await withOutbox(async (client, doc) => {
      const found = await client.query(
        `SELECT id, sourcekey, type, parent_key, change_key, data, is_read FROM ${table}
          WHERE source = $1 AND id = $2 FOR UPDATE`,
        [source, entry.localId],
      );
      const r = found.rows[0] as Row | undefined;
      if (!r) return;
      // A server that picks the key may have had the object pulled under it before this
      // write-back (a crash between its write and the commit): same object, one row.
      if (result.sourcekey !== r.sourcekey) await mergeInto(client, doc, r.id, result.sourcekey);
      if (info.last && result.object) {
        // The server's version whole: the pull skipped this row while it was pending.
        await write(client, fromObject(r.id, result.object), source);
      } else {
        const next = { ...r, sourcekey: result.sourcekey, change_key: result.changeKey ?? null };
        await write(client, next, "local");
      }
    });
  };
  const onRemote: PostgresMirrorTwoWay["pushCallbacks"]["onRemote"] = async (entry, remote) => {
    await withOutbox(async (client, doc) => {
      await client.query(`DELETE FROM ${table} WHERE source = $1 AND id = $2`, [
        source,
        entry.localId,
      ]);
      if (!remote) return;
      await mergeInto(client, doc, entry.localId, remote.sourcekey);
      await insert(client, fromObject(entry.localId, remote), source);
    });
  };

  return {
    outbox,
    edits,
    pushCallbacks: {
      onPushed,
      onRemote,
      // The server's size as the app knows it: its rows, less the creates it has not pushed,
      // plus the rows it deleted and has not pushed.
      massChange: {
        async size() {
          const doc = await rows.read(key);
          const r = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE source = $1`, [
            source,
          ]);
          let n = Number(r.rows[0]?.n ?? 0);
          for (const e of doc.entries) n += e.kind === "delete" ? 1 : e.kind === "create" ? -1 : 0;
          return n;
        },
      },
    },
    guarded: (client, fn) =>
      rows.inTransaction(client, key, (doc) =>
        fn({
          skip(sourcekey, obj) {
            if (hasPending(doc, sourcekey)) return true;
            if (!hasEcho(doc, sourcekey)) return false;
            const echo = obj !== undefined && isEcho(doc, obj);
            forgetEcho(doc, sourcekey);
            return echo;
          },
          pending: () => [...pendingKeys(doc)],
        }),
      ),
    ended: (committed) => rows.ended(key, committed),
  };
}
