/**
 * One worker process of the fleet test: syncs memory backends (rebuilt here from the version the
 * test published in `backend_version`) into the PostgreSQL mirror, and records every run's
 * interval (PostgreSQL's clock) in `runs`. SIGTERM stops it gracefully.
 */
import pg from "pg";
import {
  createPostgresMirror,
  type PostgresMirror,
} from "../../src/orchestrator/postgres-mirror.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createWorker } from "../../src/scale/worker.js";
import type { PgPool } from "../../src/stores/postgres.js";
import { advance, type Backend, createBackend } from "./backend.js";

const [url, name = "w"] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: 12 });
pool.on("error", () => {});
const backends = new Map<string, Backend>();
const mirrors = new Map<string, PostgresMirror>();
const worker = await createWorker({
  pool: pool as unknown as PgPool,
  concurrency: 8,
  pollIntervalMs: Number(process.env.POLL_MS ?? 8000),
  tickMs: 100,
  debounceMs: 100,
  expireInSeconds: 5,
  maintenanceIntervalSeconds: 1,
  getCredentials: () => ({ token: "not-needed-for-memory" }),
  async sync({ key, account, signal }) {
    const v = await pool.query("SELECT version FROM backend_version WHERE account = $1", [
      account.id,
    ]);
    let backend = backends.get(account.id);
    if (!backend) backends.set(account.id, (backend = createBackend(account.id, 20, 10)));
    advance(backend, account.id, Number(v.rows[0]?.version ?? 0), 3);
    let mirror = mirrors.get(key);
    if (!mirror) {
      mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: key });
      mirrors.set(key, mirror);
    }
    const run = await pool.query(
      "INSERT INTO runs (key, worker, started) VALUES ($1, $2, clock_timestamp()) RETURNING id",
      [key, name],
    );
    try {
      await runSync(backend.server.store("alice").items, {
        ...mirror.syncOptions,
        key,
        signal,
        batchSize: 8,
      });
    } finally {
      await pool.query("UPDATE runs SET ended = clock_timestamp() WHERE id = $1", [
        run.rows[0]?.id,
      ]);
    }
  },
});
process.on("SIGTERM", () => {
  void worker.stop().then(async () => {
    await pool.end();
    process.exit(0);
  });
});
console.log("ready");
