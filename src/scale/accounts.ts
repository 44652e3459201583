/**
 * The accounts registry: which accounts a worker fleet keeps in sync, each with its adapter, the
 * scopes to sync and its push settings, in PostgreSQL. Credentials are never stored here: workers
 * ask the application (`getCredentials(accountId)`) each time a job runs. Every (account, scope)
 * is a sync key (`<account>/<scope>`) with its own safety-poll schedule, failure count and, after
 * a permanent failure such as an `AuthError`, the reason it was parked.
 */
import { ArgumentError } from "../core/errors.js";
import { openPgPool, type PgPool, pgError } from "../stores/postgres.js";

/** One registered account. */
export interface AccountRecord {
  /** The application's id for the account (never a credential). */
  id: string;
  /** Which adapter syncs it, e.g. `google`, `imap`, `memory`. */
  adapter: string;
  /** The scopes to keep in sync, e.g. `["mail", "calendar"]`. */
  scopes: string[];
  /** Push settings for the application (webhook channel ids, topics…); free-form JSON. */
  push: Record<string, unknown> | null;
  /** ISO time it was added. */
  createdAt: string;
}

/** The schedule and health of one sync key. */
export interface SyncKeyStatus {
  key: string;
  account: string;
  scope: string;
  /** ISO time of the next safety poll (null while parked). */
  nextPollAt: string | null;
  /** Failures in a row (drives the backoff). */
  failures: number;
  lastError: string | null;
  lastOkAt: string | null;
  /** Why the key is parked (no polls, no runs) until the account is added again; null if not. */
  parkedReason: string | null;
}

export interface AccountRegistry {
  /** Adds (or replaces) an account; its keys are created, unparked and polled soon. */
  add(account: {
    id: string;
    adapter: string;
    scopes: string[];
    push?: Record<string, unknown>;
  }): Promise<void>;
  get(id: string): Promise<AccountRecord | undefined>;
  list(): Promise<AccountRecord[]>;
  /** Removes an account and its keys (queued jobs for it then do nothing). */
  remove(id: string): Promise<boolean>;
  /** The keys of every account (or one), with their schedule and parked reason. */
  keys(account?: string): Promise<SyncKeyStatus[]>;
  /** Closes the pool if the registry opened it; safe twice. */
  close(): Promise<void>;
  readonly pool: PgPool;
}

export interface AccountRegistryOptions {
  pool?: PgPool;
  connectionString?: string;
  /** The first safety poll of a new key lands uniformly within this (ms). Default 60 000. */
  spreadMs?: number;
}

/** The key of one (account, scope). */
export function syncKeyOf(account: string, scope: string): string {
  return `${account}/${scope}`;
}

const ready = new WeakMap<PgPool, Promise<void>>();

/**
 * Opens the registry (creating its tables `deltasync_accounts` and `deltasync_keys`).
 * @example
 * const accounts = await createAccountRegistry({ connectionString: process.env.DATABASE_URL });
 * await accounts.add({ id: "alice", adapter: "google", scopes: ["calendar", "contacts"] });
 */
export async function createAccountRegistry(
  options: AccountRegistryOptions,
): Promise<AccountRegistry> {
  const owned = options.pool === undefined;
  let pool = options.pool;
  if (!pool) {
    if (!options.connectionString) {
      throw new ArgumentError("createAccountRegistry needs a connectionString or a pool");
    }
    pool = await openPgPool(options.connectionString, 2);
  }
  const db = pool;
  const spreadMs = options.spreadMs ?? 60_000;
  const query = async (text: string, values?: unknown[]) => {
    try {
      return await db.query(text, values);
    } catch (cause) {
      throw pgError("accounts registry", cause);
    }
  };
  let schema = ready.get(db);
  if (!schema) {
    schema = createSchema(db);
    ready.set(db, schema);
    schema.catch(() => ready.delete(db));
  }
  await schema;
  let closed = false;
  return {
    pool: db,
    async add({ id, adapter, scopes, push }) {
      if (typeof id !== "string" || id === "" || id.includes("/")) {
        throw new ArgumentError(
          `account id must be a non-empty string without "/", got ${JSON.stringify(id)}`,
        );
      }
      if (
        !Array.isArray(scopes) ||
        scopes.length === 0 ||
        scopes.some((s) => typeof s !== "string" || s === "")
      ) {
        throw new ArgumentError(`account ${id}: scopes must be a non-empty list of names`);
      }
      const client = await db.connect();
      try {
        await client.query("BEGIN");
        await client.query(
          `INSERT INTO deltasync_accounts (id, adapter, scopes, push) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE SET adapter = excluded.adapter, scopes = excluded.scopes, push = excluded.push`,
          [id, adapter, JSON.stringify(scopes), push === undefined ? null : JSON.stringify(push)],
        );
        await client.query(
          "DELETE FROM deltasync_keys WHERE account = $1 AND NOT (scope = ANY($2))",
          [id, scopes],
        );
        // Adding again unparks (new credentials) and polls soon, spread so a bulk add is no burst.
        await client.query(
          `INSERT INTO deltasync_keys (key, account, scope, next_poll_at)
            SELECT $1 || '/' || s, $1, s, now() + random() * $3::float8 * interval '1 millisecond'
            FROM unnest($2::text[]) AS s
            ON CONFLICT (key) DO UPDATE SET parked_reason = NULL, failures = 0,
              next_poll_at = excluded.next_poll_at`,
          [id, scopes, spreadMs],
        );
        await client.query("COMMIT");
        client.release();
      } catch (cause) {
        client.release(true);
        throw pgError("accounts registry", cause);
      }
    },
    async get(id) {
      const r = await query("SELECT * FROM deltasync_accounts WHERE id = $1", [id]);
      return r.rows[0] ? accountOf(r.rows[0]) : undefined;
    },
    async list() {
      const r = await query("SELECT * FROM deltasync_accounts ORDER BY id");
      return r.rows.map(accountOf);
    },
    async remove(id) {
      const r = await query("DELETE FROM deltasync_accounts WHERE id = $1", [id]);
      return r.rowCount === 1;
    },
    async keys(account) {
      const r = await query(
        `SELECT * FROM deltasync_keys ${account === undefined ? "" : "WHERE account = $1"} ORDER BY key`,
        account === undefined ? [] : [account],
      );
      return r.rows.map((k) => ({
        key: String(k.key),
        account: String(k.account),
        scope: String(k.scope),
        nextPollAt: k.parked_reason === null ? (k.next_poll_at as Date).toISOString() : null,
        failures: Number(k.failures),
        lastError: (k.last_error as string | null) ?? null,
        lastOkAt: k.last_ok_at ? (k.last_ok_at as Date).toISOString() : null,
        parkedReason: (k.parked_reason as string | null) ?? null,
      }));
    },
    async close() {
      if (closed || !owned) return;
      closed = true;
      await db.end?.();
    },
  };
}

/** An account as read from its row (`id, adapter, scopes, push, created_at`). */
export const accountOf = (r: Record<string, unknown>): AccountRecord => ({
  id: String(r.id),
  adapter: String(r.adapter),
  scopes: r.scopes as string[],
  push: (r.push as Record<string, unknown> | null) ?? null,
  createdAt: (r.created_at as Date).toISOString(),
});

/**
 * SQL true for an account whose push settings ask for a watch (`"watch": true`). A JSON
 * comparison, not a cast: another value in one account's settings must not fail the query that
 * every worker's watch claims run.
 */
export const WATCHED = `push->'watch' = 'true'::jsonb`;

async function createSchema(pool: PgPool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext('deltasync:accounts'))");
    await client.query(`CREATE TABLE IF NOT EXISTS deltasync_accounts (
      id TEXT PRIMARY KEY,
      adapter TEXT NOT NULL,
      scopes JSONB NOT NULL,
      push JSONB,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    await client.query(`CREATE TABLE IF NOT EXISTS deltasync_keys (
      key TEXT PRIMARY KEY,
      account TEXT NOT NULL REFERENCES deltasync_accounts (id) ON DELETE CASCADE,
      scope TEXT NOT NULL,
      next_poll_at TIMESTAMPTZ NOT NULL,
      failures INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      last_ok_at TIMESTAMPTZ,
      parked_reason TEXT
    )`);
    await client.query(
      "CREATE INDEX IF NOT EXISTS deltasync_keys_due ON deltasync_keys (next_poll_at) WHERE parked_reason IS NULL",
    );
    // Workers look for accounts to watch at every tick: only those, not the whole table.
    await client.query(
      `CREATE INDEX IF NOT EXISTS deltasync_accounts_watched ON deltasync_accounts (id) WHERE ${WATCHED}`,
    );
    await client.query("COMMIT");
    client.release();
  } catch (cause) {
    client.release(true);
    throw pgError("accounts registry", cause);
  }
}
