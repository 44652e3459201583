/**
 * Table creation once per pool: stores and mirrors are cheap handles, often made per job (a
 * worker makes one per sync), and their `CREATE TABLE IF NOT EXISTS` would otherwise cost a
 * round trip and a catalog lock at every job.
 */
import type { PgQueryable } from "./postgres.js";

const created = new WeakMap<PgQueryable, Map<string, Promise<void>>>();

/**
 * Runs `create` for the first handle of `name` on `pool`; later ones share its promise. A
 * failed creation is forgotten, so the next handle tries again.
 */
export function createOnce(
  pool: PgQueryable,
  name: string,
  create: () => Promise<void>,
): Promise<void> {
  let names = created.get(pool);
  if (!names) created.set(pool, (names = new Map()));
  let done = names.get(name);
  if (!done) {
    done = create();
    names.set(name, done);
    done.catch(() => names?.delete(name));
  }
  return done;
}
