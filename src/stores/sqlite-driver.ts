/**
 * better-sqlite3, loaded on first use: it is an optional peer dependency, so importing deltasync
 * works without it, and which major to install depends on the Node version (see below).
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { ArgumentError, NotSupportedError, StateError } from "../core/errors.js";
import { checkWritableFile } from "./paths.js";

/** A prepared statement: the part of better-sqlite3's `Statement` deltasync uses. */
export interface SqliteStatement<P extends unknown[] = unknown[], R = unknown> {
  run(...params: P): { changes: number };
  get(...params: P): R | undefined;
  all(...params: P): R[];
}

/**
 * A better-sqlite3 `Database`, as the SQLite store and mirror accept one. Declared here, not
 * imported from better-sqlite3's types, so that `import "deltasync"` type-checks without the
 * optional peer installed.
 */
export interface SqliteDatabase {
  pragma(source: string): unknown;
  exec(source: string): unknown;
  // The same signature as better-sqlite3's, so its `Database` is assignable to this one.
  // biome-ignore lint/complexity/noBannedTypes: `{}` is better-sqlite3's named-parameters bound
  prepare<P extends unknown[] | {} = unknown[], R = unknown>(
    source: string,
  ): P extends unknown[] ? SqliteStatement<P, R> : SqliteStatement<[P], R>;
  // biome-ignore lint/suspicious/noExplicitAny: better-sqlite3's own bound, for assignability
  transaction<F extends (...params: any[]) => unknown>(
    fn: F,
  ): ((...params: F extends (...args: infer A) => unknown ? A : never) => ReturnType<F>) & {
    /** The same transaction with `BEGIN IMMEDIATE` (takes the write lock first). */
    immediate(...params: F extends (...args: infer A) => unknown ? A : never): ReturnType<F>;
  };
  close(): unknown;
}

const INSTALL = "npm install better-sqlite3@13 (Node 22 and later) or better-sqlite3@12 (Node 20)";

let driver: typeof BetterSqlite3 | undefined;

/**
 * Opens (creating it and its directory if needed) a SQLite file with better-sqlite3. Errors name
 * the file: `ArgumentError` when it cannot be opened or written, `StateError` when it is not a
 * SQLite database. `what` names it in messages ("state file", "mirror file").
 */
export function openSqlite(file: string, what = "SQLite file"): SqliteDatabase {
  driver ??= loadDriver();
  if (file !== ":memory:" && file !== "") {
    checkWritableFile(file, what);
    mkdirSync(dirname(resolve(file)), { recursive: true });
  }
  let db: SqliteDatabase | undefined;
  try {
    db = new driver(file) as SqliteDatabase;
    // better-sqlite3 reads the header lazily: read it now, so a corrupt file fails here.
    db.pragma("schema_version");
    return db;
  } catch (cause) {
    db?.close();
    const code = (cause as { code?: unknown }).code;
    const detail = cause instanceof Error ? cause.message : String(cause);
    if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
      throw new StateError(`${what} ${file} is not a SQLite database (${detail})`, { cause });
    }
    throw new ArgumentError(`${what} ${file} cannot be opened: ${detail}`, { cause });
  }
}

/** Loads the driver; the parameters exist for tests. */
export function loadDriver(
  require: (id: string) => unknown = createRequire(import.meta.url),
  nodeVersion: string = process.versions.node,
): typeof BetterSqlite3 {
  let loaded: typeof BetterSqlite3;
  let version: string;
  try {
    loaded = require("better-sqlite3") as typeof BetterSqlite3;
    version = (require("better-sqlite3/package.json") as { version: string }).version;
  } catch (cause) {
    if ((cause as { code?: unknown }).code === "MODULE_NOT_FOUND") {
      throw new NotSupportedError(`SQLite needs the better-sqlite3 package: ${INSTALL}`, {
        cause,
      });
    }
    throw cause;
  }
  const nodeMajor = Number(nodeVersion.split(".")[0]);
  if (nodeMajor >= 24 && Number(version.split(".")[0]) < 13) {
    // better-sqlite3 12 aborts the process on Node 24 when a statement is garbage-collected
    // (its ObjectWrap removes a cleanup hook with no current environment); 13 uses Node-API.
    process.emitWarning(
      `better-sqlite3 ${version} can abort the process on Node ${nodeVersion}: ${INSTALL}`,
      { code: "DELTASYNC_SQLITE_NODE24" },
    );
  }
  return loaded;
}
