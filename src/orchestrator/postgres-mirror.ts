/**
 * A PostgreSQL copy of synced scopes, with the SQLite mirror's columns and semantics (`source`,
 * stable `id`, `change_key`, `updated_at_source`, generations swept after a full sync) and one
 * difference that makes it exactly-once: a batch's rows and the state after it are committed in
 * one transaction. The batch callbacks only collect; `saveState` writes the rows, compare-and-sets
 * the state and commits. A crash anywhere leaves either both or neither, and a second worker that
 * raced on the same scope loses its compare-and-set and rolls its rows back.
 */
import { ArgumentError } from "../core/errors.js";
import type { SyncObject } from "../core/types.js";
import {
  openPgPool,
  type PgClient,
  type PgPool,
  type PgQueryable,
  pgError,
} from "../stores/postgres.js";
import { createOnce } from "../stores/postgres-schema.js";
import { statementsFor } from "../stores/prepared.js";
import { checkTable } from "../stores/sqlite.js";
import type { BatchCallbacks } from "./batch.js";
import {
  defaultReadOf,
  lastPerKey,
  type MirrorOp,
  type MirrorRow,
  timeOrderedId,
} from "./mirror-rows.js";
import {
  type PostgresMirrorEdits,
  type PostgresMirrorTwoWay,
  type PostgresPullGuard,
  postgresMirrorTwoWay,
} from "./postgres-mirror-two-way.js";

export type { PostgresMirrorEdits } from "./postgres-mirror-two-way.js";

export interface PostgresMirrorOptions {
  /** Names the origin of every row, e.g. `google:alice/primary`; also the state's key. */
  source: string;
  /** Your pool (not closed by `close()`); or give `connectionString`. */
  pool?: PgPool;
  connectionString?: string;
  /** Table name. Default `mirror`; the states live in `<table>_state`. */
  table?: string;
  /** Reads an item's read flag from its data. Default: `data.read` when it is a boolean. */
  readOf?(obj: SyncObject): boolean | undefined;
  /**
   * Two-way sync: the sourcekey a row created through `edits.create` gets (pass the write
   * target's `keyFor`, so a create replayed after a crash finds its object). Default `local:<id>`.
   */
  keyFor?(localId: string): string;
}

/** What `runSync` needs from the mirror: the collecting callbacks and the committing state. */
export type PostgresMirrorSyncOptions = Required<
  Pick<
    BatchCallbacks,
    "onUpdated" | "onDeleted" | "onRead" | "onReset" | "onFullSyncBegin" | "onFullSyncEnd"
  >
> & {
  getState(): Promise<string | undefined>;
  saveState(state: string, previous: string | undefined): Promise<boolean>;
};

export interface PostgresMirror {
  /** Spread into `runSync`: `runSync(folder, { ...mirror.syncOptions, key: mirror.source })`. */
  readonly syncOptions: PostgresMirrorSyncOptions;
  readonly source: string;
  /** Every row of this mirror's source, ordered by sourcekey. */
  rows(): Promise<MirrorRow[]>;
  get(sourcekey: string): Promise<MirrorRow | undefined>;
  count(): Promise<number>;
  /** The saved state of this source. */
  state(): Promise<string | undefined>;
  /**
   * Deletes this source's rows and state together (the next sync is a full one), except rows
   * with pending local edits.
   */
  clear(): Promise<void>;
  /**
   * Two-way sync: local edits of rows, each recorded in the outbox (`outbox`, pair = `source`)
   * in the same transaction. Pulls leave rows with pending edits alone (in the pull's own
   * transaction) and do not bounce our own pushes back; push with
   * `push(target, mirror.outbox, { pair: mirror.source, ...mirror.pushCallbacks })`.
   */
  readonly edits: PostgresMirrorEdits;
  /** The outbox of this mirror's source: row tables `<table>_outbox_ob_*` in the same database. */
  readonly outbox: PostgresMirrorTwoWay["outbox"];
  /** Write-back callbacks for `push`: results and conflict resolutions update the rows. */
  readonly pushCallbacks: PostgresMirrorTwoWay["pushCallbacks"];
  /** Closes the pool if the mirror opened it; safe twice. */
  close(): Promise<void>;
}

/**
 * Opens (creating the tables if needed) the mirror of one source.
 * @example
 * const mirror = await createPostgresMirror({ pool, source: "memory:alice" });
 * await runSync(store.items, { ...mirror.syncOptions, key: mirror.source });
 * await mirror.count(); // 5000
 */
export async function createPostgresMirror(
  options: PostgresMirrorOptions,
): Promise<PostgresMirror> {
  const table = checkTable(options.table ?? "mirror");
  const { source } = options;
  if (typeof source !== "string" || source === "") {
    throw new ArgumentError("createPostgresMirror needs a non-empty source");
  }
  const owned = options.pool === undefined;
  let pool = options.pool;
  if (!pool) {
    if (!options.connectionString) {
      throw new ArgumentError("createPostgresMirror needs a connectionString or a pool");
    }
    pool = await openPgPool(options.connectionString, 4);
  }
  const db = pool;
  await ensureSchema(db, table);
  // The state's and the batches' statements run at every round: named, where the pool is pg's
  // own (parsed once per connection, planned once: not each time).
  const statement = await statementsFor(db);
  const stateQuery = async (on: PgQueryable, text: string, values: unknown[]) => {
    try {
      return await statement(on, text, values);
    } catch (cause) {
      throw pgError(`PostgreSQL mirror ${table}`, cause);
    }
  };
  const readOf = options.readOf ?? defaultReadOf;
  const query = async (text: string, values?: unknown[]) => {
    try {
      return await db.query(text, values);
    } catch (cause) {
      throw pgError(`PostgreSQL mirror ${table}`, cause);
    }
  };

  let ops: MirrorOp[] = [];
  /** Writes a pull's collected changes, leaving rows with pending local edits alone. */
  const apply = async (client: PgClient, list: MirrorOp[], guard: PostgresPullGuard) => {
    const now = new Date().toISOString();
    const genOf = async () =>
      Number(
        (await statement(client, `SELECT gen FROM ${table}_generation WHERE source = $1`, [source]))
          .rows[0]?.gen ?? 0,
      );
    let gen: number | undefined;
    for (const op of list) {
      if (op.kind === "begin") {
        const r = await statement(
          client,
          `INSERT INTO ${table}_generation (source, gen) VALUES ($1, 1)
            ON CONFLICT (source) DO UPDATE SET gen = ${table}_generation.gen + 1 RETURNING gen`,
          [source],
        );
        gen = Number(r.rows[0]?.gen);
      } else if (op.kind === "end") {
        gen ??= await genOf();
        // Rows the full sync did not touch are gone on the server (pending local edits stay).
        await statement(
          client,
          `DELETE FROM ${table} WHERE source = $1 AND sync_gen < $2 AND NOT (sourcekey = ANY($3))`,
          [source, gen, guard.pending()],
        );
      } else if (op.kind === "reset") {
        await statement(
          client,
          `DELETE FROM ${table} WHERE source = $1 AND NOT (sourcekey = ANY($2))`,
          [source, guard.pending()],
        );
      } else if (op.kind === "updated") {
        gen ??= await genOf();
        const latest = lastPerKey(op.records, (r) => r.sourcekey);
        // A row the pull leaves alone still counts as seen by a running full sync (not swept).
        const left = latest.filter((r) => guard.skip(r.sourcekey, r)).map((r) => r.sourcekey);
        if (left.length > 0) {
          await statement(
            client,
            `UPDATE ${table} SET sync_gen = $3 WHERE source = $1 AND sourcekey = ANY($2)`,
            [source, left, gen],
          );
        }
        const skipped = new Set(left);
        const records = latest
          .filter((r) => !skipped.has(r.sourcekey))
          .map((obj) => {
            const read = readOf(obj);
            return {
              sourcekey: obj.sourcekey,
              id: timeOrderedId(),
              type: obj.type,
              parent_key: obj.parentKey ?? null,
              change_key: obj.changeKey ?? null,
              data: obj.data ?? null,
              is_read: read ?? null,
            };
          });
        await statement(
          client,
          `INSERT INTO ${table} (source, sourcekey, id, type, parent_key, change_key, data, is_read,
              created_locally, updated_locally, updated_at_source, sync_gen)
            SELECT $1, r.sourcekey, r.id, r.type, r.parent_key, r.change_key, r.data, r.is_read,
              $3, $3, $1, $4
            FROM jsonb_to_recordset($2::jsonb) AS r(sourcekey text, id text, type text,
              parent_key text, change_key text, data jsonb, is_read boolean)
            ON CONFLICT (source, sourcekey) DO UPDATE SET
              type = excluded.type, parent_key = excluded.parent_key, change_key = excluded.change_key,
              data = excluded.data, is_read = excluded.is_read, updated_locally = excluded.updated_locally,
              updated_at_source = excluded.updated_at_source, sync_gen = excluded.sync_gen`,
          [source, JSON.stringify(records), now, gen],
        );
      } else if (op.kind === "deleted") {
        const folders: string[] = [];
        const others: string[] = [];
        for (const [i, k] of op.keys.entries()) {
          if (guard.skip(k)) continue;
          (op.objects?.[i]?.type === "folder" ? folders : others).push(k);
        }
        if (others.length > 0) {
          await statement(
            client,
            `DELETE FROM ${table} WHERE source = $1 AND sourcekey = ANY($2)`,
            [source, others],
          );
        }
        if (folders.length > 0) {
          // A folder delete implies its subtree (DESIGN.md): remove every descendant too.
          await statement(
            client,
            `WITH RECURSIVE tree(k) AS (
                SELECT unnest($2::text[])
                UNION SELECT m.sourcekey FROM ${table} m JOIN tree ON m.parent_key = tree.k
                  WHERE m.source = $1
              ) DELETE FROM ${table} WHERE source = $1 AND sourcekey IN (SELECT k FROM tree)`,
            [source, folders],
          );
        }
      } else {
        const changes = lastPerKey(op.changes, (c) => c.sourcekey)
          .filter((c) => !guard.skip(c.sourcekey))
          .map((c) => ({
            sourcekey: c.sourcekey,
            is_read: c.isRead,
          }));
        // The read flag lives in `is_read`; a `read` boolean inside the data follows it.
        await statement(
          client,
          `UPDATE ${table} t SET is_read = r.is_read, updated_locally = $3,
              updated_at_source = t.source,
              data = CASE WHEN jsonb_typeof(t.data -> 'read') = 'boolean'
                THEN jsonb_set(t.data, '{read}', to_jsonb(r.is_read)) ELSE t.data END
            FROM jsonb_to_recordset($2::jsonb) AS r(sourcekey text, is_read boolean)
            WHERE t.source = $1 AND t.sourcekey = r.sourcekey`,
          [source, JSON.stringify(changes), now],
        );
      }
    }
  };

  /** Runs `fn` in a transaction on one client; a failure rolls back and discards a broken client. */
  const transaction = async <R>(fn: (client: PgClient) => Promise<R | undefined>) => {
    let client: PgClient;
    try {
      client = await db.connect();
    } catch (cause) {
      throw pgError(`PostgreSQL mirror ${table}`, cause);
    }
    // A connection that dies while checked out emits `error` on the client: the query fails too.
    const emitter = client as unknown as Partial<Pick<NodeJS.EventEmitter, "on" | "off">>;
    const ignore = () => {};
    emitter.on?.("error", ignore);
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query(result === undefined ? "ROLLBACK" : "COMMIT");
      client.release();
      return result;
    } catch (cause) {
      try {
        await client.query("ROLLBACK");
        client.release();
      } catch {
        client.release(true);
      }
      throw pgError(`PostgreSQL mirror ${table}`, cause);
    } finally {
      emitter.off?.("error", ignore);
    }
  };

  const two = await postgresMirrorTwoWay({
    pool: db,
    table,
    source,
    keyFor: options.keyFor ?? ((id) => `local:${id}`),
    newId: timeOrderedId,
    readOf,
    transaction,
  });
  type Guarded = <T>(write: (guard: PostgresPullGuard) => Promise<T>) => Promise<T>;
  /**
   * A transaction in which `guarded(write)` locks the source's outbox (after what `fn` locked
   * first, e.g. the state row) and runs `write` with the pull-side guard; what the guard changed
   * (forgotten echoes) commits with the transaction.
   */
  const guardedTransaction = async <R>(
    fn: (client: PgClient, guarded: Guarded) => Promise<R | undefined>,
  ): Promise<R | undefined> => {
    let entered = false;
    try {
      const result = await transaction((client) =>
        fn(client, (write) => {
          entered = true;
          return two.guarded(client, write);
        }),
      );
      if (entered) two.ended(result !== undefined);
      return result;
    } catch (error) {
      if (entered) two.ended(false);
      throw error;
    }
  };

  const collect = (op: MirrorOp) => {
    ops.push(op);
  };
  const syncOptions: PostgresMirrorSyncOptions = {
    onUpdated: (records) => collect({ kind: "updated", records: records as SyncObject[] }),
    onDeleted: (keys, objects) => collect({ kind: "deleted", keys, objects }),
    onRead: (changes) => collect({ kind: "read", changes }),
    onReset: () => collect({ kind: "reset" }),
    onFullSyncBegin: () => collect({ kind: "begin" }),
    onFullSyncEnd: () => collect({ kind: "end" }),
    async getState() {
      // A run starts here: writes a failed run collected and never committed are dropped.
      ops = [];
      return mirror.state();
    },
    async saveState(next, previous) {
      const list = ops;
      ops = [];
      const writeState = (on: PgQueryable) =>
        previous === undefined
          ? stateQuery(
              on,
              `INSERT INTO ${table}_state (key, state) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
              [source, next],
            )
          : stateQuery(
              on,
              `UPDATE ${table}_state SET state = $2, saved_at = now() WHERE key = $1 AND state = $3`,
              [source, next, previous],
            );
      // A round with nothing to write (a safety poll whose token moved) is the state row alone:
      // one statement, atomic by itself, without a transaction or the two-way rows' lock.
      if (list.length === 0) return (await writeState(db)).rowCount === 1;
      const saved = await guardedTransaction(async (client, guarded) => {
        // The state row first: it locks this source, so a racing worker waits, then loses.
        if ((await writeState(client)).rowCount !== 1) return undefined;
        await guarded((guard) => apply(client, list, guard));
        return true;
      });
      return saved === true;
    },
  };

  const toRow = (r: Record<string, unknown>): MirrorRow => ({
    source: String(r.source),
    sourcekey: String(r.sourcekey),
    id: String(r.id),
    type: String(r.type),
    parentKey: (r.parent_key as string | null) ?? null,
    changeKey: (r.change_key as string | null) ?? null,
    data: r.data,
    isRead: (r.is_read as boolean | null) ?? null,
    createdLocally: (r.created_locally as Date).toISOString(),
    updatedLocally: (r.updated_locally as Date).toISOString(),
    updatedAtSource: String(r.updated_at_source),
  });

  let closed = false;
  const mirror: PostgresMirror = {
    syncOptions,
    source,
    async rows() {
      const r = await query(`SELECT * FROM ${table} WHERE source = $1 ORDER BY sourcekey`, [
        source,
      ]);
      return r.rows.map(toRow);
    },
    async get(sourcekey) {
      const r = await query(`SELECT * FROM ${table} WHERE source = $1 AND sourcekey = $2`, [
        source,
        sourcekey,
      ]);
      return r.rows[0] ? toRow(r.rows[0]) : undefined;
    },
    async count() {
      const r = await query(`SELECT count(*)::int AS n FROM ${table} WHERE source = $1`, [source]);
      return Number(r.rows[0]?.n ?? 0);
    },
    async state() {
      const r = await stateQuery(db, `SELECT state FROM ${table}_state WHERE key = $1`, [source]);
      const s = r.rows[0]?.state;
      return typeof s === "string" ? s : undefined;
    },
    async clear() {
      await guardedTransaction(async (client, guarded) => {
        await client.query(`DELETE FROM ${table}_state WHERE key = $1`, [source]);
        await guarded((guard) =>
          client.query(`DELETE FROM ${table} WHERE source = $1 AND NOT (sourcekey = ANY($2))`, [
            source,
            guard.pending(),
          ]),
        );
        return true;
      });
    },
    edits: two.edits,
    outbox: two.outbox,
    pushCallbacks: two.pushCallbacks,
    async close() {
      if (closed) return;
      closed = true;
      await two.outbox.close();
      if (owned) await db.end?.();
    },
  };
  return mirror;
}

function ensureSchema(pool: PgPool, table: string): Promise<void> {
  return createOnce(pool, `mirror:${table}`, () => createSchema(pool, table));
}

async function createSchema(pool: PgPool, table: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // Concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type: serialise them.
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`deltasync:${table}`]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${table} (
      source TEXT NOT NULL,
      sourcekey TEXT NOT NULL,
      id TEXT NOT NULL UNIQUE,
      type TEXT NOT NULL,
      parent_key TEXT,
      change_key TEXT,
      data JSONB,
      is_read BOOLEAN,
      created_locally TIMESTAMPTZ NOT NULL,
      updated_locally TIMESTAMPTZ NOT NULL,
      updated_at_source TEXT NOT NULL,
      sync_gen INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (source, sourcekey)
    )`);
    await client.query(
      `CREATE INDEX IF NOT EXISTS ${table}_parent ON ${table} (source, parent_key)`,
    );
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table}_generation (source TEXT PRIMARY KEY, gen INTEGER NOT NULL)`,
    );
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table}_state (key TEXT PRIMARY KEY, state TEXT NOT NULL, saved_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    await client.query("COMMIT");
    client.release();
  } catch (cause) {
    client.release(true);
    throw pgError(`PostgreSQL mirror ${table}`, cause);
  }
}
