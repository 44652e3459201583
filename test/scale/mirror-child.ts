/**
 * Child process of the Postgres mirror crash test: syncs account ACCOUNT at backend VERSION into
 * the mirror and, when KILL_AT is set, SIGKILLs itself at that commit: `midTransaction` after the
 * batch's rows and state were written but before COMMIT reached the server, `afterCommit` right
 * after it did.
 */
import pg from "pg";
import { createPostgresMirror } from "../../src/orchestrator/postgres-mirror.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import type { PgClient, PgPool } from "../../src/stores/postgres.js";
import { advance, createBackend } from "./backend.js";

const [url, account = "a", version = "0"] = process.argv.slice(2);
const killAt = Number(process.env.KILL_AT ?? 0);
const phase = process.env.KILL_PHASE;
const pool = new pg.Pool({ connectionString: url, max: 2 });
let commits = 0;
const die = () => process.kill(process.pid, "SIGKILL");
// The pool as the mirror sees it, with a hook on COMMIT.
const hooked: PgPool = {
  query: (text, values) => pool.query(text, values) as never,
  async connect() {
    const client = (await pool.connect()) as unknown as PgClient;
    return {
      release: (e) => client.release(e),
      async query(text, values) {
        if (text === "COMMIT") {
          commits++;
          if (phase === "midTransaction" && commits === killAt) die();
          const r = await client.query(text, values);
          if (phase === "afterCommit" && commits === killAt) die();
          return r;
        }
        return client.query(text, values);
      },
    };
  },
};
const backend = createBackend(account, 300, 50);
advance(backend, account, Number(version), 40);
const mirror = await createPostgresMirror({ pool: hooked, source: account });
await runSync(backend.server.store("alice").items, {
  ...mirror.syncOptions,
  key: account,
  batchSize: 40,
});
await pool.end();
console.log("completed");
