/**
 * Child process for the kill test: syncs a deterministic memory server into a SQLite mirror and
 * SIGKILLs itself at batch KILL_AT in phase KILL_PHASE (beforeCommit | afterCommit | afterSave).
 */
import diagnostics_channel from "node:diagnostics_channel";
import Database from "better-sqlite3";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { channels } from "../../src/orchestrator/telemetry.js";
import { openKillScenario } from "./kill-scenario.js";

const [dbFile] = process.argv.slice(2);
const killAt = Number(process.env.KILL_AT);
const phase = process.env.KILL_PHASE;
const db = new Database(dbFile as string);
const { syncable, mirror, states } = openKillScenario(db);
let batch = 0;
const die = () => process.kill(process.pid, "SIGKILL");
diagnostics_channel.subscribe(channels.batch, (m) => {
  if (phase === "afterSave" && (m as { batch: number }).batch === killAt) die();
});
await runSync(syncable, {
  ...mirror.callbacks,
  onUpdated(records) {
    batch++;
    if (phase === "beforeCommit" && batch === killAt) {
      // Half the batch is written inside an open transaction, then the process dies.
      db.prepare("BEGIN").run();
      mirror.importer.update?.(records[0] as never, { created: true });
      die();
    }
    mirror.callbacks.onUpdated(records);
    if (phase === "afterCommit" && batch === killAt) die();
  },
  store: states,
  batchSize: 40,
});
console.log("completed");
