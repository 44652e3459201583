/**
 * better-sqlite3, loaded on first use: it is an optional peer dependency, so importing deltasync
 * works without it, and which major to install depends on the Node version (see below).
 */
import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";
import { NotSupportedError } from "../core/errors.js";

/** A better-sqlite3 database, as the SQLite store and mirror accept one. */
export type SqliteDatabase = BetterSqlite3.Database;

const INSTALL = "npm install better-sqlite3@13 (Node 22 and later) or better-sqlite3@12 (Node 20)";

let driver: typeof BetterSqlite3 | undefined;

/** Opens (creating if needed) a SQLite file with better-sqlite3. */
export function openSqlite(file: string): SqliteDatabase {
  driver ??= loadDriver();
  return new driver(file);
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
