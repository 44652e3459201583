/**
 * The fleet's session advisory locks (held on each worker's lock session, dropped by PostgreSQL
 * with the session): one per sync key while it runs, one per watched account.
 */

/** Tries a lock by name; the row's `ok` says whether this session holds it now. */
export const TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok";
export const UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";

/** The lock id, in SQL, of the running sync key in `column` (its lock's name: `deltasync:<key>`). */
export const keyLockSql = (column: string): string =>
  `hashtextextended('deltasync:' || ${column}, 0)`;

/** Unlocks the sync keys in `$1` (a text array), one round trip for all. */
export const UNLOCK_KEYS_SQL = `SELECT pg_advisory_unlock(${keyLockSql("k")}) FROM unnest($1::text[]) AS k`;

/** The lock of a watched account. */
export const watchLock = (accountId: string): string => `deltasync:watch:${accountId}`;
