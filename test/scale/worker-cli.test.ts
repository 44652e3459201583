/**
 * `deltasync worker` end to end: worker processes of the CLI (run through tsx) sync memory
 * accounts registered with `deltasync accounts add` into the PostgreSQL mirror; and a worker
 * that gets SIGTERM while it writes a batch commits that batch with its state, hands the key
 * back and exits 0, so a worker started afterwards finishes the key.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSnapshot, saveSnapshot } from "../../adapters/memory/cli.js";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { createPostgresMirror } from "../../src/orchestrator/postgres-mirror.js";
import { createAccountRegistry } from "../../src/scale/accounts.js";
import { createSyncQueue, enqueueSync } from "../../src/scale/queue.js";
import type { PgPool } from "../../src/stores/postgres.js";
import { AUDIT_DUPLICATES, AUDIT_SQL, actualRows, advance, expectedRows } from "./backend.js";
import { createTestDatabase, pgReachable } from "./pg.js";

const up = await pgReachable();
if (!up && process.env.CI) throw new Error("PostgreSQL on 127.0.0.1:5432 is unreachable");

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "deltasync-worker-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    input: "",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface WorkerProcess {
  proc: ChildProcess;
  /** Every line it wrote to stderr, parsed (each must be JSON). */
  lines: Record<string, unknown>[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Resolves when a line matching `match` has been logged. */
  logged(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

function spawnWorker(url: string, args: string[]): Promise<WorkerProcess> {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "worker", "--db", url, ...args],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
  );
  const lines: Record<string, unknown>[] = [];
  let text = "";
  const waiters: (() => void)[] = [];
  proc.stderr?.on("data", (d: Buffer) => {
    text += d.toString();
    const complete = text.slice(0, text.lastIndexOf("\n") + 1);
    const parsed = complete.split("\n").filter((l) => l.trim());
    lines.length = 0;
    for (const l of parsed) {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        lines.push({ event: "not-json", text: l });
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const logged = async (match: (line: Record<string, unknown>) => boolean) => {
    for (;;) {
      const found = lines.find(match);
      if (found) return found;
      if (proc.exitCode !== null) throw new Error(`worker exited: ${text}`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited]);
    }
  };
  const worker = { proc, lines, stderr: () => text, exited, logged };
  return logged((l) => l.event === "worker" && l.phase === "started").then(() => worker);
}

const children: WorkerProcess[] = [];

/** Polls `check` until it holds (the test timeout bounds it); a worker that died fails it. */
async function until(check: () => Promise<boolean> | boolean, what = ""): Promise<void> {
  while (!(await check())) {
    const dead = children.find((c) => c.proc.exitCode !== null && !c.proc.killed);
    if (dead) throw new Error(`a worker exited while waiting for ${what}: ${dead.stderr()}`);
    if (process.env.DEBUG_WORKER_CLI) console.error("waiting for", what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The process's exit, or a failure if it has not exited by itself after `ms` (then killed). */
async function exitWithin(w: WorkerProcess, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      w.proc.kill("SIGKILL");
      reject(new Error(`worker did not exit within ${ms} ms of SIGTERM: ${w.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([w.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(!up)("deltasync worker (CLI)", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase("ds_wcli");
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on("error", () => {});
    await createPostgresMirror({ pool: pool as unknown as PgPool, source: "setup" });
    await pool.query(AUDIT_SQL("mirror"));
  });
  afterAll(async () => {
    for (const c of children) c.proc.kill("SIGKILL");
    await pool?.end();
    await db?.drop();
  });

  /** Whether the key's mirror equals the memory server saved in `file`. */
  async function mirrorEquals(key: string, file: string): Promise<boolean> {
    const snapshot = loadSnapshot(file);
    if (!snapshot) return false;
    const mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: key });
    return isDeepStrictEqual(
      actualRows(await mirror.rows()),
      expectedRows(createMemoryServer({ from: snapshot })),
    );
  }

  const jobsOf = async (key: string) =>
    (
      await pool.query(
        "SELECT id, state FROM deltasync_boss.job WHERE singleton_key = $1 ORDER BY created_on",
        [key],
      )
    ).rows as { id: string; state: string }[];

  const openJobs = async () =>
    Number(
      (
        await pool.query(
          "SELECT count(*)::int AS n FROM deltasync_boss.job WHERE state IN ('created', 'active', 'retry')",
        )
      ).rows[0].n,
    );

  it("two worker processes sync accounts added by `accounts add`; pushes resync; credentials stay out of logs", async () => {
    const calls = join(dir, "calls.txt");
    const module = join(dir, "credentials.mjs");
    writeFileSync(
      module,
      `import { appendFileSync } from "node:fs";
export function getCredentials(id) {
  appendFileSync(${JSON.stringify(calls)}, id + "\\n");
  if (id === "nocreds") return null;
  if (id === "tok") return { token: "s3cret-token-of-tok" };
  return { env: { DELTASYNC_EXAMPLE_PASSWORD: "s3cret-env-" + id } };
}
`,
    );
    const ids = ["m0", "m1", "m2", "m3"];
    const file = (id: string) => join(dir, `${id}.json`);
    const template = (id: string, seed: number) =>
      `memory:demo?items=60&seed=${seed}&pageSize=10&file=${file(id)}&scope={scope}`;
    for (const [i, id] of ids.entries()) {
      const added = cli(["accounts", "add", id, template(id, i + 1), "items", "--db", db.url]);
      expect(added.stderr).toBe("");
      expect(added.code).toBe(0);
    }
    for (const id of ["tok", "nocreds"]) {
      expect(cli(["accounts", "add", id, template(id, 9), "items", "--db", db.url]).code).toBe(0);
    }
    // An adapter no worker could open is refused when added (bad argument).
    const refused = cli(["accounts", "add", "x", "nosuch", "items", "--db", db.url]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/bad argument: adapter "nosuch": unknown scheme/);

    const args = ["--poll", "3600", "--tick", "0.2", "--batch-size", "20"];
    const workers = await Promise.all([
      spawnWorker(db.url, [...args, "--credentials", module, "--concurrency", "3"]),
      spawnWorker(db.url, [...args, "--credentials", module, "--concurrency", "3"]),
    ]);
    children.push(...workers);
    // Pushes from a node that runs no worker (a webhook receiver) start every key.
    const queue = await createSyncQueue({ pool: pool as unknown as PgPool });
    for (const id of [...ids, "tok", "nocreds"]) await enqueueSync(queue, `${id}/items`);
    const accounts = await createAccountRegistry({ pool: pool as unknown as PgPool });
    const parked = async (id: string) => (await accounts.keys(id))[0]?.parkedReason ?? null;
    for (const id of ids) await until(() => mirrorEquals(`${id}/items`, file(id)), id);
    await until(
      async () => (await parked("tok")) !== null && (await parked("nocreds")) !== null,
      "parked",
    );
    expect(await parked("tok")).toMatch(/ArgumentError: the memory: source takes no --token/);
    expect(await parked("nocreds")).toMatch(/no credentials for account nocreds/);

    // The backends change (while no run holds their files); a push each brings the mirrors along.
    await until(async () => (await openJobs()) === 0, "no open jobs");
    for (const id of ["m0", "m2"]) {
      const server = createMemoryServer({ from: loadSnapshot(file(id)) });
      advance({ server, version: 0 }, id, 2, 6);
      saveSnapshot(server, file(id));
      await enqueueSync(queue, `${id}/items`);
    }
    for (const id of ids) await until(() => mirrorEquals(`${id}/items`, file(id)), id);
    await queue.close();

    for (const w of workers) w.proc.kill("SIGTERM");
    for (const w of workers) expect(await exitWithin(w, 60_000)).toEqual({ code: 0, signal: null });
    const logs = workers.map((w) => w.stderr()).join("");
    expect(logs).not.toContain("s3cret");
    const lines = workers.flatMap((w) => w.lines);
    expect(lines.filter((l) => l.event === "not-json")).toEqual([]);
    expect(lines.filter((l) => l.event === "worker").map((l) => l.phase)).toEqual(
      expect.arrayContaining(["started", "stopping", "stopped"]),
    );
    const synced = lines.filter((l) => l.event === "sync");
    // Six syncs of memory keys: four full, two incremental after the pushes.
    expect(synced.filter((l) => l.fullSync === true).map((l) => l.key)).toEqual(
      expect.arrayContaining(ids.map((id) => `${id}/items`)),
    );
    expect(
      synced.filter((l) => l.fullSync === false && Number(l.updated) + Number(l.deleted) > 0),
    ).toHaveLength(2);
    expect(
      lines.filter((l) => l.event === "sync-failed").map((l) => [l.key ?? l.account, l.parked]),
    ).toEqual(
      expect.arrayContaining([
        ["tok/items", true],
        ["nocreds", true],
      ]),
    );
    // The module was asked at every job (and nothing kept them).
    const asked = readFileSync(calls, "utf8").split("\n").filter(Boolean);
    for (const id of [...ids, "tok", "nocreds"]) expect(asked).toContain(id);
    expect(asked.filter((id) => id === "m0").length).toBeGreaterThanOrEqual(2);
    expect(
      (await pool.query(AUDIT_DUPLICATES("mirror"), [ids.map((id) => `${id}/items`)])).rows,
    ).toEqual([]);
  }, 240_000);

  it("SIGTERM while a batch is being written: that batch commits with its state, the process exits 0, the key is handed back and a later worker finishes it", async () => {
    const key = "big/items";
    const file = join(dir, "big.json");
    const accounts = await createAccountRegistry({ pool: pool as unknown as PgPool, spreadMs: 0 });
    // The batch commit after two committed batches of this key pauses after writing its state
    // and rows, until the test lets go of advisory lock 4242.
    await pool.query(`
      CREATE FUNCTION pause_third_batch() RETURNS trigger AS $$
      BEGIN
        IF (SELECT count(DISTINCT tx) FROM mirror_audit
            WHERE source = NEW.source AND tx <> txid_current()) >= 2 THEN
          PERFORM pg_advisory_xact_lock_shared(4242);
        END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql;
      CREATE TRIGGER pause_tr AFTER INSERT OR UPDATE ON mirror
        FOR EACH ROW WHEN (NEW.source = '${key}') EXECUTE FUNCTION pause_third_batch()`);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(4242)");
      await accounts.add({
        id: "big",
        adapter: `memory:demo?items=400&seed=7&pageSize=20&file=${file}&scope={scope}`,
        scopes: ["items"],
      });
      const args = ["--poll", "3600", "--tick", "0.2", "--batch-size", "20"];
      const first = await spawnWorker(db.url, args);
      children.push(first);
      // Mid-batch: two batches committed, the third's state and rows written, its commit waiting.
      await until(
        async () =>
          (
            await pool.query(
              "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted",
            )
          ).rowCount === 1,
        "the third batch to pause",
      );
      const committed = async () =>
        (
          await pool.query(
            "SELECT tx, count(*)::int AS n FROM mirror_audit WHERE source = $1 GROUP BY tx ORDER BY tx",
            [key],
          )
        ).rows as { tx: string; n: number }[];
      expect((await committed()).map((b) => b.n)).toEqual([20, 20]);
      const [running] = (await jobsOf(key)).filter((j) => j.state === "active");
      expect(running).toBeDefined();

      first.proc.kill("SIGTERM");
      await first.logged((l) => l.event === "worker" && l.phase === "stopping");
      await holder.query("SELECT pg_advisory_unlock(4242)");
      // It exits by itself, 0, once the batch it was writing is saved.
      expect(await exitWithin(first, 60_000)).toEqual({ code: 0, signal: null });
      expect(first.lines.find((l) => l.key === key && l.event !== "sync-stopped")).toBeUndefined();
      expect(first.lines.filter((l) => l.event === "sync-stopped").map((l) => l.key)).toEqual([
        key,
      ]);
      // The batch it was writing is committed, in one transaction with its state; no more after it.
      const batches = await committed();
      expect(batches.map((b) => b.n)).toEqual([20, 20, 20]);
      const state = await pool.query(
        "SELECT (xmin::text)::bigint AS xid FROM mirror_state WHERE key = $1",
        [key],
      );
      expect(Number(state.rows[0].xid)).toBe(Number(BigInt(batches[2]?.tx ?? 0) % 2n ** 32n));
      const mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: key });
      expect(await mirror.count()).toBe(60);
      // The key is handed back: its job completed (not left active to expire), one queued behind.
      const jobs = await jobsOf(key);
      expect(jobs.find((j) => j.id === running?.id)?.state).toBe("completed");
      expect(jobs.map((j) => j.state)).toEqual(["completed", "created"]);
      const handedBack = jobs[1]?.id;

      // A worker started afterwards takes that very job and finishes the key.
      const second = await spawnWorker(db.url, args);
      children.push(second);
      await until(() => mirrorEquals(key, file), "the second worker to finish the key");
      await until(
        async () => (await jobsOf(key)).find((j) => j.id === handedBack)?.state === "completed",
        "the handed-back job to complete",
      );
      expect((await jobsOf(key)).map((j) => j.state)).not.toContain("failed");
      expect(
        second.lines.filter((l) => l.event === "sync").map((l) => [l.key, l.fullSync, l.updated]),
      ).toEqual([[key, true, 400 - 60]]);
      expect((await pool.query(AUDIT_DUPLICATES("mirror"), [[key]])).rows).toEqual([]);
      second.proc.kill("SIGTERM");
      expect(await exitWithin(second, 60_000)).toEqual({ code: 0, signal: null });
    } finally {
      await holder.end();
    }
  }, 240_000);
});
