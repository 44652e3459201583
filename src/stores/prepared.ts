/**
 * Named (prepared) statements for the statements made at every job or round (the worker's
 * bookkeeping, the mirror's state): `pg` parses a named statement once per connection, and
 * PostgreSQL then plans it once (a generic plan after five runs), where an unnamed one is parsed
 * and planned every time: about a quarter of a millisecond of the server's CPU per statement.
 */
import { createHash } from "node:crypto";
import type { PgQueryable } from "./postgres.js";

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

type PgModule = {
  Pool: abstract new (...args: never[]) => unknown;
  Client: abstract new (...args: never[]) => unknown;
};
let pgModule: Promise<PgModule | undefined> | undefined;

/**
 * A runner that names its statements when `db` is node-postgres's own Pool or Client (their
 * `query` takes `{ name, text, values }`), and sends plain text to anything else behind
 * `PgQueryable` (another driver's adapter, a wrapper), which is only promised `query(text, values)`.
 */
export async function statementsFor(
  db: PgQueryable,
): Promise<(on: PgQueryable, text: string, values: unknown[]) => Promise<QueryResult>> {
  pgModule ??= import("pg").then(
    (m) => {
      const pg = ((m as { default?: PgModule }).default ?? m) as PgModule;
      return typeof pg.Pool === "function" && typeof pg.Client === "function" ? pg : undefined;
    },
    () => undefined,
  );
  const pg = await pgModule;
  const named = (on: PgQueryable) =>
    pg !== undefined && (on instanceof pg.Pool || on instanceof pg.Client);
  if (!named(db)) return (on, text, values) => on.query(text, values);
  return (on, text, values) =>
    named(on) ? queryPrepared(on, text, values) : on.query(text, values);
}
