/**
 * N worker processes, hundreds of accounts, random SIGKILLs: after quiescence every account's
 * mirror equals its backend, no key was ever run by two workers at once (run intervals from
 * PostgreSQL's clock), and no batch was applied twice (the mirror's write audit).
 * DELTASYNC_FLEET_ACCOUNTS / DELTASYNC_FLEET_WORKERS / DELTASYNC_FLEET_KILLS scale it up.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seededRandom } from "../../src/cli/demo-data.js";
import { createPostgresMirror, type MirrorRow } from "../../src/orchestrator/index.js";
import { createAccountRegistry } from "../../src/scale/accounts.js";
import { createSyncQueue } from "../../src/scale/queue.js";
import type { PgPool } from "../../src/stores/postgres.js";
import {
  AUDIT_DUPLICATES,
  AUDIT_SQL,
  actualRows,
  advance,
  createBackend,
  expectedRows,
} from "./backend.js";
import { createTestDatabase, pgReachable } from "./pg.js";

const up = await pgReachable();
if (!up && process.env.CI) throw new Error("PostgreSQL on 127.0.0.1:5432 is unreachable");
const ACCOUNTS = Number(process.env.DELTASYNC_FLEET_ACCOUNTS ?? 300);
const WORKERS = Number(process.env.DELTASYNC_FLEET_WORKERS ?? 3);
const KILLS = Number(process.env.DELTASYNC_FLEET_KILLS ?? 3);
const child = fileURLToPath(new URL("./fleet-child.ts", import.meta.url));

interface Node {
  name: string;
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

function spawnWorker(url: string, name: string): Promise<Node> {
  const proc = spawn(process.execPath, ["--import", "tsx", child, url, name], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    proc.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) resolve({ name, proc, exited });
    });
    void exited.then(() => reject(new Error(`worker ${name} exited before it was ready`)));
  });
}

async function until(check: () => Promise<boolean>, what = ""): Promise<void> {
  while (!(await check())) {
    if (process.env.DEBUG_FLEET) console.error("waiting", what);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe.skipIf(!up)("a fleet of worker processes", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;
  const nodes: Node[] = [];
  beforeAll(async () => {
    db = await createTestDatabase("ds_fleet");
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on("error", () => {});
  });
  afterAll(async () => {
    for (const n of nodes) n.proc.kill("SIGKILL");
    await pool?.end();
    await db?.drop();
  });

  it(`${WORKERS} workers, ${ACCOUNTS} accounts, ${KILLS} SIGKILLs: mirrors equal backends, no overlapping runs, no batch twice`, async () => {
    const rnd = seededRandom(Number(process.env.DELTASYNC_FLEET_SEED ?? Date.now() % 1e9));
    const accounts = await createAccountRegistry({
      pool: pool as unknown as PgPool,
      spreadMs: 3000,
    });
    await createPostgresMirror({ pool: pool as unknown as PgPool, source: "setup" });
    await pool.query(AUDIT_SQL("mirror"));
    await pool.query(`CREATE TABLE backend_version (account TEXT PRIMARY KEY, version INTEGER NOT NULL);
      CREATE TABLE runs (id BIGSERIAL PRIMARY KEY, key TEXT, worker TEXT, started TIMESTAMPTZ, ended TIMESTAMPTZ);
      CREATE TABLE kills (worker TEXT PRIMARY KEY, at TIMESTAMPTZ)`);
    const ids = Array.from({ length: ACCOUNTS }, (_, i) => `acct${i}`);
    for (const id of ids) await accounts.add({ id, adapter: "memory", scopes: ["items"] });
    await pool.query("INSERT INTO backend_version SELECT unnest($1::text[]), 0", [ids]);
    let spawned = 0;
    const started = await Promise.all(
      Array.from({ length: WORKERS }, () => spawnWorker(db.url, `w${spawned++}`)),
    );
    nodes.push(...started);
    const queue = await createSyncQueue({ pool: pool as unknown as PgPool });
    const versions = new Map(ids.map((id) => [id, 0]));
    for (let k = 0; k < KILLS; k++) {
      // Changes on a quarter of the accounts; pushes for half of those, polls find the rest.
      const changed = ids.filter(() => rnd() < 0.25);
      for (const id of changed) versions.set(id, (versions.get(id) ?? 0) + 1);
      await pool.query(
        "UPDATE backend_version SET version = version + 1 WHERE account = ANY($1::text[])",
        [changed],
      );
      for (const id of changed) if (rnd() < 0.5) await queue.enqueue(`${id}/items`);
      // Let them work, then SIGKILL one (while runs are in flight) and start a replacement.
      await until(
        async () =>
          Number((await pool.query("SELECT count(*) AS n FROM runs")).rows[0].n) >
          (k + 1) * ACCOUNTS * 0.3,
        "runs",
      );
      const victim = nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null)[
        Math.floor(rnd() * WORKERS)
      ] as Node;
      await pool.query("INSERT INTO kills VALUES ($1, clock_timestamp())", [victim.name]);
      victim.proc.kill("SIGKILL");
      expect((await victim.exited).signal).toBe("SIGKILL");
      nodes.push(await spawnWorker(db.url, `w${spawned++}`));
    }
    await queue.close();
    // Quiescence: every mirror equals its backend at its final version.
    const expected = new Map(
      ids.map((id) => {
        const b = createBackend(id, 20, 10);
        advance(b, id, versions.get(id) ?? 0, 3);
        return [`${id}/items`, expectedRows(b.server)];
      }),
    );
    const mismatched = async () => {
      const r = await pool.query(
        "SELECT source, sourcekey, parent_key, change_key, data, is_read FROM mirror WHERE source <> 'setup' ORDER BY source, sourcekey",
      );
      const bySource = new Map<
        string,
        Pick<MirrorRow, "sourcekey" | "parentKey" | "changeKey" | "data" | "isRead">[]
      >();
      for (const row of r.rows) {
        const list = bySource.get(row.source) ?? [];
        list.push({
          sourcekey: row.sourcekey,
          parentKey: row.parent_key,
          changeKey: row.change_key,
          data: row.data,
          isRead: row.is_read,
        });
        bySource.set(row.source, list);
      }
      return [...expected]
        .filter(([key, rows]) => !isDeepStrictEqual(actualRows(bySource.get(key) ?? []), rows))
        .map(([key]) => key);
    };
    await until(async () => {
      const m = await mismatched();
      if (process.env.DEBUG_FLEET) console.error(m.length, m.slice(0, 3));
      return m.length === 0;
    }, "quiescence");
    // Graceful stop of the survivors.
    const alive = nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
    for (const n of alive) n.proc.kill("SIGTERM");
    for (const n of alive) expect((await n.exited).code).toBe(0);
    // No two runs of one key overlapped. A killed worker's open run counts until its kill signal
    // (a lower bound of its real end: sound, it can only miss an overlap of a few milliseconds).
    const overlaps = await pool.query(`
      WITH r AS (SELECT runs.id, runs.key, runs.started, coalesce(runs.ended, kills.at) AS ended
        FROM runs LEFT JOIN kills USING (worker))
      SELECT a.key, a.id, b.id FROM r a JOIN r b ON a.key = b.key AND a.id < b.id
      WHERE a.started < coalesce(b.ended, 'infinity') AND b.started < coalesce(a.ended, 'infinity')`);
    expect(overlaps.rows).toEqual([]);
    expect((await pool.query(AUDIT_DUPLICATES("mirror"), [[...expected.keys()]])).rows).toEqual([]);
    const runs = Number((await pool.query("SELECT count(*) AS n FROM runs")).rows[0].n);
    expect(runs).toBeGreaterThanOrEqual(ACCOUNTS);
    console.log(`fleet: ${runs} runs by ${spawned} worker processes, ${KILLS} SIGKILLed`);
  }, 240_000);
});
