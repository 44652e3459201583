import type Database from "better-sqlite3";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { generateDemoServer } from "../../src/cli/demo-data.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { createSqliteStateStore } from "../../src/stores/sqlite.js";

/** The same server in every process: 300 generated items, 50 per page. */
export function openKillScenario(db: Database.Database) {
  const server = createMemoryServer({ pageSize: 50, epoch: "kill-scenario" });
  generateDemoServer(server, 300, 7);
  const syncable = server.store("alice").items;
  return {
    server,
    syncable,
    mirror: createSqliteMirror(db, { source: "kill" }),
    states: createSqliteStateStore(db),
  };
}
