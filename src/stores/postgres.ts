import { ArgumentError, TransientError } from "../core/errors.js";
import type { OutboxRows } from "../two-way/outbox-rows.js";
import { postgresOutboxRows } from "./postgres-outbox.js";
import { createOnce } from "./postgres-schema.js";
import { checkTable } from "./sqlite.js";
import type { StateStore } from "./types.js";

/** The subset of a `pg` Pool (or Client) this store uses, so the core never depends on `pg`. */
export interface PgQueryable {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
  end?(): Promise<void>;
}

/** A `pg` Pool: queries, and a dedicated client for a transaction. */
export interface PgPool extends PgQueryable {
  connect(): Promise<PgClient>;
}

/** A client checked out of a `PgPool`; `release(error)` discards a broken one. */
export interface PgClient extends PgQueryable {
  release(error?: Error | boolean): void;
}

/** Opens a `pg` Pool (the optional peer dependency, loaded on first use). */
export async function openPgPool(connectionString: string, max: number): Promise<PgPool> {
  let pg: typeof import("pg");
  try {
    pg = await import("pg");
  } catch (cause) {
    throw new ArgumentError("PostgreSQL needs the `pg` package: npm i pg", { cause });
  }
  const Pool = pg.Pool ?? (pg as unknown as { default: typeof import("pg") }).default.Pool;
  const pool = new Pool({ connectionString, max });
  // An idle client whose connection dies (a restart, pg_terminate_backend) must not crash us.
  pool.on("error", () => {});
  return pool as unknown as PgPool;
}

// Connection-level failures (SQLSTATE class 08, admin shutdown 57P01-57P03, 40001 serialization)
// are worth a retry; everything else is a bug or a schema problem.
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "40001",
  "40P01",
]);

/** Wraps a `pg` failure: transient ones become `TransientError` (never echoing the URL). */
export function pgError(what: string, cause: unknown): unknown {
  const code = (cause as { code?: string } | null)?.code;
  const message = cause instanceof Error ? cause.message : "";
  if (
    (code !== undefined &&
      (TRANSIENT_CODES.has(code) || code.startsWith("08") || code.startsWith("57P"))) ||
    /Connection terminated|connection is closed|Client has encountered a connection error/i.test(
      message,
    )
  ) {
    return new TransientError(`${what} unreachable (${code ?? "connection lost"})`, { cause });
  }
  return cause;
}

export interface PostgresStateStoreOptions {
  /** A connection string (`postgres://user@host:5432/db`); the password may come from `PGPASSWORD`. */
  connectionString?: string;
  /**
   * Or your own pool/client; it is not closed by `close()`. An outbox over this store keeps its
   * entries in rows when it is a pool (`connect()`: one transaction per commit), else one
   * document per pair.
   */
  pool?: PgQueryable;
  /** Table name. Default `deltasync_state`. */
  table?: string;
}

/**
 * States in a PostgreSQL table, for deployments with several workers. `pg` is an optional peer
 * dependency, loaded only when this store is created from a connection string.
 * @example
 * const store = await createPostgresStateStore({ connectionString: process.env.DATABASE_URL });
 */
export async function createPostgresStateStore(
  options: PostgresStateStoreOptions,
): Promise<StateStore> {
  const table = checkTable(options.table ?? "deltasync_state");
  let pool = options.pool;
  const owned = pool === undefined;
  if (!pool) {
    if (!options.connectionString) {
      throw new ArgumentError("createPostgresStateStore needs a connectionString or a pool");
    }
    pool = await openPgPool(options.connectionString, 4);
  }
  const db = pool;
  const query = async (text: string, values?: unknown[]) => {
    try {
      return await db.query(text, values);
    } catch (cause) {
      throw pgError("PostgreSQL state store", cause);
    }
  };
  await createOnce(db, `state:${table}`, async () => {
    await query(
      `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, state TEXT NOT NULL, saved_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
  });
  let closed = false;
  let rows: OutboxRows | undefined;
  const canTransact = typeof (db as Partial<PgPool>).connect === "function";
  return {
    ...(canTransact
      ? {
          outboxRows: () => {
            rows ??= postgresOutboxRows(db as PgPool, table);
            return rows;
          },
        }
      : {}),
    async get(key) {
      const r = await query(`SELECT state FROM ${table} WHERE key = $1`, [key]);
      const state = r.rows[0]?.state;
      return typeof state === "string" ? state : undefined;
    },
    async compareAndSet(key, expected, next) {
      const r =
        expected === undefined
          ? await query(
              `INSERT INTO ${table} (key, state) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
              [key, next],
            )
          : await query(
              `UPDATE ${table} SET state = $2, saved_at = now() WHERE key = $1 AND state = $3`,
              [key, next, expected],
            );
      return r.rowCount === 1;
    },
    async delete(key) {
      await query(`DELETE FROM ${table} WHERE key = $1`, [key]);
    },
    async keys() {
      const r = await query(`SELECT key FROM ${table} ORDER BY key`);
      return r.rows.map((row) => String(row.key));
    },
    async close() {
      if (closed || !owned) return;
      closed = true;
      await db.end?.();
    },
  };
}
