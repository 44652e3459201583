/**
 * Named (prepared) statements for the worker's per-job queries: `pg` parses a named statement
 * once per connection, and PostgreSQL then plans it once (a generic plan after five runs), where
 * an unnamed one is parsed and planned at every job. That work falls inside the job's time (a
 * statement's `now()` is taken before it is planned), so it is worth skipping.
 */
import { createHash } from "node:crypto";
import type { PgQueryable } from "../stores/postgres.js";

type QueryResult = Awaited<ReturnType<PgQueryable["query"]>>;

const names = new Map<string, string>();

/** The statement's name: from its text, so workers sharing a pool never give one name two texts. */
function nameOf(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `deltasync_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * Runs `text` as a named statement on `db` (a `pg` Pool or Client: `query` takes a config object
 * with a `name`).
 */
export function queryPrepared(
  db: PgQueryable,
  text: string,
  values: unknown[],
): Promise<QueryResult> {
  const named = db.query as unknown as (config: {
    name: string;
    text: string;
    values: unknown[];
  }) => Promise<QueryResult>;
  return named.call(db, { name: nameOf(text), text, values });
}
