/**
 * The row outbox (see two-way/outbox-rows.ts) in PostgreSQL, for several workers: tables
 * `<table>_ob_meta`, `<table>_ob_entries`, `<table>_ob_echoes` next to a state table. A commit
 * locks the pair's meta row (`INSERT … ON CONFLICT DO UPDATE`: it waits for a concurrent writer
 * and then sees its commit) and reads its rows in the same statement, reads them again only when
 * another writer moved the version, and writes what changed in one statement. `inTransaction`
 * does the same inside the caller's transaction: the Postgres mirror writes a row and its outbox
 * entry together.
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
import { type PgClient, type PgPool, type PgQueryable, pgError } from "./postgres.js";
import { createOnce } from "./postgres-schema.js";
import { statementsFor } from "./prepared.js";

export interface PostgresOutboxRows extends OutboxRows {
  read(key: string): Promise<OutboxDoc>;
  update<R>(key: string, fn: (doc: OutboxDoc) => R, options?: { replayable?: boolean }): Promise<R>;
  keys(): Promise<string[]>;
  /**
   * Applies `fn` to the pair's document and writes what changed, on `client` inside the caller's
   * open transaction (the pair stays locked until it ends). Once called, the caller must call
   * `ended(key, committed)` exactly once, when its transaction committed or rolled back.
   */
  inTransaction<R>(
    client: PgClient,
    key: string,
    fn: (doc: OutboxDoc) => R | Promise<R>,
  ): Promise<R>;
  ended(key: string, committed: boolean): void;
  /** Resolves once the tables exist (created under an advisory lock: workers start together). */
  ready(): Promise<void>;
}

const metaOf = (m: Record<string, unknown>): MetaRow => ({
  version: Number(m.version),
  next: Number(m.next),
  cursor: Number(m.cursor),
  ord: Number(m.ord),
  conflicts: String(m.conflicts),
});

/** The row outbox over `pool`; `table` is the state table older documents may be left in. */
export function postgresOutboxRows(pool: PgPool, table: string): PostgresOutboxRows {
  const what = `PostgreSQL outbox ${table}`;
  const cache = new Map<string, RowSnapshot>();
  // Pairs with a transaction of this handle in flight: their cached document may hold changes
  // not committed yet, so readers go to the database.
  const busy = new Map<string, number>();
  const enter = (key: string) => busy.set(key, (busy.get(key) ?? 0) + 1);
  const ended = (key: string, committed: boolean) => {
    const n = (busy.get(key) ?? 1) - 1;
    if (n > 0) busy.set(key, n);
    else busy.delete(key);
    if (!committed) cache.delete(key);
  };
  const schema = () =>
    createOnce(pool, `outbox:${table}`, () =>
      createTables(pool, table).catch((cause) => {
        throw pgError(what, cause);
      }),
    );
  // A pull's lock-and-load and a commit's write run at every job: named, where the pool is pg's
  // own (the lock-and-load statement took 0.4 ms of the server's CPU to parse and plan each time).
  let runner: ReturnType<typeof statementsFor> | undefined;
  const statement = async (db: PgQueryable, text: string, values: unknown[]) => {
    runner ??= statementsFor(pool);
    return (await runner)(db, text, values);
  };

  /** The pair's rows as one statement sees them: 0 meta, 1 entries, 2 echoes, 3 an old document. */
  const pairRows = `SELECT 0 AS kind, 0::bigint AS n, json_build_object('version', version,
        'next', next, 'cursor', cursor, 'ord', ord, 'conflicts', conflicts)::text AS text
      FROM ${table}_ob_meta WHERE key = $1 AND version > 0
    UNION ALL SELECT 1, seq, entry FROM ${table}_ob_entries WHERE key = $1
    UNION ALL SELECT 2, ord, echo FROM ${table}_ob_echoes WHERE key = $1
    UNION ALL SELECT 3, 0, state FROM ${table} WHERE key = $1`;

  const snapshotOf = (key: string, rows: Record<string, unknown>[]): RowSnapshot => {
    const texts = (kind: number) =>
      rows.filter((x) => Number(x.kind) === kind).map((x) => String(x.text));
    const [meta] = texts(0);
    if (meta === undefined) {
      // None yet, or a document an older version kept whole (its first commit moves it).
      const [old] = texts(3);
      return unsaved(old === undefined ? undefined : parseDoc(key, old));
    }
    const m = metaOf(JSON.parse(meta) as Record<string, unknown>);
    return loaded(m, docFromRows(key, m, texts(1), texts(2)));
  };

  /** The pair as stored (one statement: one consistent view). */
  const readPair = async (db: PgQueryable, key: string): Promise<RowSnapshot> => {
    const r = await statement(db, `${pairRows} ORDER BY 1, 2`, [key]);
    return snapshotOf(key, r.rows);
  };

  /**
   * Locks the pair (a new pair gets a version-0 meta row, listed once saved) and loads it, in
   * one statement when it can. The lock (`ON CONFLICT DO UPDATE`) waits for a concurrent writer
   * and returns the version it committed, but the statement's reads keep the snapshot taken
   * before the wait: they are used only when that snapshot saw the same version (every commit
   * moves it), else the rows are read again by a statement of their own, after the lock.
   */
  const load = async (db: PgQueryable, key: string): Promise<RowSnapshot> => {
    const cached = cache.get(key);
    const cachedVersion = cached && cached.meta.version > 0 ? cached.meta.version : -1;
    const r = await statement(
      db,
      `WITH locked AS (INSERT INTO ${table}_ob_meta (key, version, next, cursor, ord, conflicts)
          VALUES ($1, 0, 1, 0, 0, '[]') ON CONFLICT (key) DO UPDATE SET key = excluded.key
          RETURNING version)
      SELECT -1 AS kind, (SELECT version FROM locked) AS n,
          (SELECT version FROM ${table}_ob_meta WHERE key = $1)::text AS text
      UNION ALL SELECT * FROM (${pairRows}) AS pair WHERE (SELECT version FROM locked) <> $2
      ORDER BY 1, 2`,
      [key, cachedVersion],
    );
    const [head, ...rows] = r.rows;
    const version = Number(head?.n);
    // The version the statement's snapshot saw; no row there reads as 0, as a new pair's.
    const seen = Number(head?.text ?? 0);
    let s: RowSnapshot;
    if (cached && version === cachedVersion) s = cached;
    else if (seen === version) s = snapshotOf(key, rows);
    else s = await readPair(db, key);
    cache.set(key, s);
    return s;
  };

  const save = async (db: PgQueryable, key: string, s: RowSnapshot): Promise<boolean> => {
    const ch = changes(s);
    if (!ch) return false;
    await statement(
      db,
      `WITH de AS (DELETE FROM ${table}_ob_entries WHERE key = $1 AND seq = ANY($2::bigint[])),
        pe AS (INSERT INTO ${table}_ob_entries (key, seq, entry)
          SELECT $1, u.s, u.e FROM unnest($3::bigint[], $4::text[]) AS u(s, e)
          ON CONFLICT (key, seq) DO UPDATE SET entry = excluded.entry),
        dc AS (DELETE FROM ${table}_ob_echoes WHERE key = $1 AND sourcekey = ANY($5::text[])),
        pc AS (INSERT INTO ${table}_ob_echoes (key, sourcekey, ord, echo)
          SELECT $1, u.k, u.o, u.e FROM unnest($6::text[], $7::bigint[], $8::text[]) AS u(k, o, e)
          ON CONFLICT (key, sourcekey) DO UPDATE SET ord = excluded.ord, echo = excluded.echo),
        dl AS (DELETE FROM ${table} WHERE key = $1 AND $9::boolean)
      UPDATE ${table}_ob_meta SET version = $10, next = $11, cursor = $12, ord = $13,
        conflicts = $14 WHERE key = $1`,
      [
        key,
        ch.dropEntries,
        ch.putEntries.map((e) => e.seq),
        ch.putEntries.map((e) => JSON.stringify(e)),
        ch.dropEchoes,
        ch.putEchoes.map((e) => e.echo.sourcekey),
        ch.putEchoes.map((e) => e.ord),
        ch.putEchoes.map((e) => JSON.stringify(e.echo)),
        s.meta.version === 0,
        ch.meta.version,
        ch.meta.next,
        ch.meta.cursor,
        ch.meta.ord,
        ch.meta.conflicts,
      ],
    );
    saved(s, ch);
    return true;
  };

  return {
    async read(key) {
      await schema();
      try {
        if (!busy.has(key)) {
          const r = await pool.query(`SELECT version FROM ${table}_ob_meta WHERE key = $1`, [key]);
          const cached = cache.get(key);
          const version = Number(r.rows[0]?.version ?? 0);
          // Busy again meanwhile: the cached copy may hold what is not committed yet.
          const current = !busy.has(key) && version > 0 && cached?.meta.version === version;
          if (cached && current) return readCopy(cached);
        }
        return readCopy(await readPair(pool, key));
      } catch (error) {
        throw pgError(what, error);
      }
    },
    async update(key, fn, options = {}) {
      await schema();
      const client = await connect(pool, what);
      enter(key);
      let committed = false;
      try {
        // A replayable commit need not wait for its WAL flush (as SQLite's `synchronous = NORMAL`).
        await client.query(
          options.replayable ? "BEGIN; SET LOCAL synchronous_commit = off" : "BEGIN",
        );
        const s = await load(client, key);
        const result = fn(s.doc);
        const wrote = await save(client, key, s);
        await client.query(wrote ? "COMMIT" : "ROLLBACK");
        committed = true;
        client.release();
        return result;
      } catch (error) {
        try {
          await client.query("ROLLBACK");
          client.release();
        } catch {
          client.release(true);
        }
        throw pgError(what, error);
      } finally {
        ended(key, committed);
      }
    },
    async keys() {
      await schema();
      try {
        const r = await pool.query(
          `SELECT key FROM ${table}_ob_meta WHERE version > 0 UNION SELECT key FROM ${table} ORDER BY 1`,
        );
        return r.rows.map((x) => String(x.key));
      } catch (cause) {
        throw pgError(what, cause);
      }
    },
    async inTransaction(client, key, fn) {
      enter(key);
      await schema();
      const s = await load(client, key);
      const result = await fn(s.doc);
      await save(client, key, s);
      return result;
    },
    ended,
    ready: schema,
  };
}

async function connect(pool: PgPool, what: string): Promise<PgClient> {
  try {
    return await pool.connect();
  } catch (cause) {
    throw pgError(what, cause);
  }
}

async function createTables(pool: PgPool, table: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // Concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type: serialise them.
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`deltasync:${table}:ob`]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, state TEXT NOT NULL, saved_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    await client.query(`CREATE TABLE IF NOT EXISTS ${table}_ob_meta (
      key TEXT PRIMARY KEY, version BIGINT NOT NULL, next BIGINT NOT NULL,
      cursor BIGINT NOT NULL, ord BIGINT NOT NULL, conflicts TEXT NOT NULL)`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${table}_ob_entries (
      key TEXT NOT NULL, seq BIGINT NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (key, seq))`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${table}_ob_echoes (
      key TEXT NOT NULL, sourcekey TEXT NOT NULL, ord BIGINT NOT NULL, echo TEXT NOT NULL,
      PRIMARY KEY (key, sourcekey))`);
    await client.query("COMMIT");
    client.release();
  } catch (cause) {
    client.release(true);
    throw cause;
  }
}
