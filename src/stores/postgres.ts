import { ArgumentError, TransientError } from "../core/errors.js";
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

export interface PostgresStateStoreOptions {
  /** A connection string (`postgres://user@host:5432/db`); the password may come from `PGPASSWORD`. */
  connectionString?: string;
  /** Or your own pool/client; it is not closed by `close()`. */
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
    let pg: typeof import("pg");
    try {
      pg = await import("pg");
    } catch (cause) {
      throw new ArgumentError("the PostgreSQL state store needs the `pg` package: npm i pg", {
        cause,
      });
    }
    const Pool = pg.Pool ?? (pg as unknown as { default: typeof import("pg") }).default.Pool;
    pool = new Pool({ connectionString: options.connectionString, max: 4 }) as PgQueryable;
  }
  const db = pool;
  const query = async (text: string, values?: unknown[]) => {
    try {
      return await db.query(text, values);
    } catch (cause) {
      // Never echo the connection string: it may hold a password.
      const code = (cause as { code?: string }).code;
      if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "ETIMEDOUT") {
        throw new TransientError(`PostgreSQL state store unreachable (${code})`, { cause });
      }
      throw cause;
    }
  };
  await query(
    `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, state TEXT NOT NULL, saved_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
  );
  let closed = false;
  return {
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
