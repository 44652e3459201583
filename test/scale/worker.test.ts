import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AuthError, TransientError } from "../../src/core/errors.js";
import { createPostgresMirror } from "../../src/orchestrator/postgres-mirror.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createAccountRegistry } from "../../src/scale/accounts.js";
import {
  checkSchemaVersion,
  createSyncQueue,
  enqueueSync,
  FETCH_INDEX,
  fetchJobsSql,
  PG_BOSS_SCHEMA_VERSION,
  SYNC_QUEUE,
} from "../../src/scale/queue.js";
import { createWorker, type Worker } from "../../src/scale/worker.js";
import type { PgPool } from "../../src/stores/postgres.js";
import { actualRows, advance, type Backend, createBackend, expectedRows } from "./backend.js";
import { createTestDatabase, pgReachable } from "./pg.js";

const up = await pgReachable();
if (!up && process.env.CI) throw new Error("PostgreSQL on 127.0.0.1:5432 is unreachable");

/** Polls `check` until it holds (no deadline of its own: the test timeout bounds it). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

describe.skipIf(!up)("accounts registry and workers", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;
  /**
   * The database's clock, as text: a Date would drop the microseconds, and a job inserted in the
   * millisecond of a window's bound would fall outside it.
   */
  const clock = async () =>
    (await pool.query("SELECT clock_timestamp()::text AS t")).rows[0].t as string;
  beforeAll(async () => {
    db = await createTestDatabase("ds_worker");
    pool = new pg.Pool({ connectionString: db.url, max: 6 });
    pool.on("error", () => {});
  });
  let stopAll: () => Promise<unknown> = async () => {};
  /** One sync of `key` from `backend`'s store into the PostgreSQL mirror. */
  const mirrorSync = async (backend: Backend, key: string, signal: AbortSignal) => {
    const mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: key });
    await runSync(backend.server.store("alice").items, { ...mirror.syncOptions, key, signal });
  };
  /** Jobs of `key` not finished yet. */
  const openJobs = async (key: string): Promise<number> =>
    (
      await pool.query(
        "SELECT count(*)::int AS n FROM deltasync_boss.job WHERE data->>'key' = $1 AND state IN ('created', 'active', 'retry')",
        [key],
      )
    ).rows[0].n;
  // A failed test's workers are stopped before the next test starts: left running, they would
  // take its jobs and run them with the failed test's sync.
  afterEach(async () => {
    const stop = stopAll;
    stopAll = async () => {};
    await stop();
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("queues opened at once on a fresh schema all start (pg-boss creates its schema without IF NOT EXISTS)", async () => {
    for (let round = 0; round < 5; round++)
      await raceOnce(`race_${process.pid}_${Date.now()}_${round}`);
  });

  async function raceOnce(schema: string): Promise<void> {
    const pools = Array.from({ length: 8 }, () => {
      const p = new pg.Pool({ connectionString: db.url, max: 2 });
      p.on("error", () => {});
      return p;
    });
    try {
      const queues = await Promise.all(
        pools.map((p) => createSyncQueue({ pool: p as unknown as PgPool, schema })),
      );
      await Promise.all(queues.map((q, i) => q.enqueue(`race/${i}`)));
      await Promise.all(queues.map((q) => q.close()));
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  }

  it("fetches the oldest queued job through an index in fetch order, not by sorting every queued job", async () => {
    const schema = `fetch_${process.pid}`;
    const queue = await createSyncQueue({ pool: pool as unknown as PgPool, schema });
    try {
      await queue.enqueue("fetch/oldest");
      await queue.enqueueMany(Array.from({ length: 3000 }, (_, i) => `fetch/${i}`));
      await pool.query(`ANALYZE ${schema}.job`);
      const plan = await pool.query(`EXPLAIN ${fetchJobsSql(schema, "1")}`);
      const text = plan.rows.map((r) => r["QUERY PLAN"]).join("\n");
      expect(text).toContain(`Index Scan using ${FETCH_INDEX}`);
      expect(text).not.toMatch(/Sort Key/);
      // The fetch takes the oldest job first, as pg-boss's own fetch does.
      const first = await pool.query(`${fetchJobsSql(schema, "$1")}`, [1]);
      expect(first.rows.map((r) => r.key)).toEqual(["fetch/oldest"]);
    } finally {
      await queue.close();
    }
  });

  it("refuses a pg-boss schema its job SQL was not written for, naming both versions", async () => {
    // pg-boss migrates its tables to the installed package's version at start: a pg-boss
    // other than the one the worker's SQL was written for shows as another version here.
    const installed = JSON.parse(
      readFileSync(new URL("../../node_modules/pg-boss/version.json", import.meta.url), "utf8"),
    ) as { schema: number };
    expect(installed.schema).toBe(PG_BOSS_SCHEMA_VERSION);
    const at = (version: number) =>
      ({ query: async () => ({ rows: [{ version }] }) }) as unknown as PgPool;
    await expect(checkSchemaVersion(at(25), "boss")).rejects.toThrow(
      /schema boss is at version 25; deltasync's workers need version 24 \(pg-boss 10\)/,
    );
    await expect(checkSchemaVersion(at(24), "boss")).resolves.toBeUndefined();
  });

  it("adds, lists and removes accounts; each scope is a key; bad input is refused", async () => {
    const accounts = await createAccountRegistry({ pool: pool as unknown as PgPool });
    await accounts.add({
      id: "r1",
      adapter: "google",
      scopes: ["calendar", "contacts"],
      push: { topic: "t" },
    });
    await accounts.add({ id: "r2", adapter: "imap", scopes: ["mail"] });
    expect(
      (await accounts.list())
        // Other tests' accounts share the database (refill…, relock1): only this test's two.
        .filter((a) => a.id === "r1" || a.id === "r2")
        .map((a) => [a.id, a.adapter, a.scopes, a.push]),
    ).toEqual([
      ["r1", "google", ["calendar", "contacts"], { topic: "t" }],
      ["r2", "imap", ["mail"], null],
    ]);
    expect((await accounts.keys("r1")).map((k) => k.key)).toEqual(["r1/calendar", "r1/contacts"]);
    await accounts.add({ id: "r1", adapter: "google", scopes: ["calendar"] });
    expect((await accounts.keys("r1")).map((k) => k.key)).toEqual(["r1/calendar"]);
    expect(await accounts.remove("r1")).toBe(true);
    expect(await accounts.remove("r1")).toBe(false);
    expect(await accounts.keys("r1")).toEqual([]);
    await expect(accounts.add({ id: "a/b", adapter: "x", scopes: ["s"] })).rejects.toThrow(
      /without "\/"/,
    );
    await expect(accounts.add({ id: "c", adapter: "x", scopes: [] })).rejects.toThrow(/scopes/);
    await accounts.remove("r2");
  });

  it("two nodes: a push on either syncs its key once, on one of them; AuthError parks, failures back off", async () => {
    const accounts = await createAccountRegistry({ pool: pool as unknown as PgPool, spreadMs: 0 });
    const backends = new Map<string, Backend>();
    for (const id of ["p1", "p2", "p3"]) {
      backends.set(id, createBackend(id, 30, 10));
      await accounts.add({ id, adapter: "memory", scopes: ["items"] });
    }
    await accounts.add({ id: "bad", adapter: "memory", scopes: ["items"] });
    await accounts.add({ id: "flaky", adapter: "memory", scopes: ["items"] });
    const runs: { node: string; key: string }[] = [];
    const active = new Set<string>();
    let overlap = false;
    const errors: unknown[] = [];
    const node = (name: string) =>
      createWorker({
        pool: pool as unknown as PgPool,
        concurrency: 4,
        pollIntervalMs: 3_600_000,
        tickMs: 100,
        debounceMs: 50,
        onError: (error) => errors.push(error),
        backoff: { minMs: 60_000 },
        getCredentials: (id) => {
          if (id === "bad") throw new AuthError("invalid_grant for bad");
          return { token: "t" };
        },
        async sync({ key, account, signal }) {
          if (account.id === "flaky") throw new TransientError("backend 503");
          const backend = backends.get(account.id) as Backend;
          const mirror = await createPostgresMirror({
            pool: pool as unknown as PgPool,
            source: key,
          });
          if (active.has(key)) overlap = true;
          active.add(key);
          runs.push({ node: name, key });
          try {
            await runSync(backend.server.store("alice").items, {
              ...mirror.syncOptions,
              key,
              signal,
            });
          } finally {
            active.delete(key);
          }
        },
      });
    const workers: Worker[] = [await node("A"), await node("B")];
    stopAll = () => Promise.all(workers.map((w) => w.stop()));
    const mirrored = async (id: string) => {
      const mirror = await createPostgresMirror({
        pool: pool as unknown as PgPool,
        source: `${id}/items`,
      });
      const b = backends.get(id) as Backend;
      return isDeepStrictEqual(actualRows(await mirror.rows()), expectedRows(b.server));
    };
    // The first safety poll (spread over 0 ms here) full-syncs every key.
    await until(
      async () => (await mirrored("p1")) && (await mirrored("p2")) && (await mirrored("p3")),
    );
    await until(async () => (await accounts.keys("bad"))[0]?.parkedReason != null);
    await until(async () => ((await accounts.keys("flaky"))[0]?.failures ?? 0) > 0);
    const before = runs.length;
    // A webhook on node B for p2: one run, on either node.
    advance(backends.get("p2") as Backend, "p2", 1, 5);
    await (workers[1] as Worker).notify("p2/items");
    await until(() => mirrored("p2"));
    expect(runs.slice(before).map((r) => r.key)).toEqual(["p2/items"]);
    // Pushes for the same key while it is queued coalesce into one run.
    advance(backends.get("p3") as Backend, "p3", 1, 5);
    await Promise.all([
      (workers[0] as Worker).notify("p3/items", { debounceMs: 200 }),
      (workers[1] as Worker).notify("p3/items", { debounceMs: 200 }),
      (workers[0] as Worker).notify("p3/items", { debounceMs: 200 }),
    ]);
    await until(() => mirrored("p3"));
    await until(
      async () =>
        (
          await pool.query(
            "SELECT count(*)::int AS n FROM deltasync_boss.job WHERE state IN ('created', 'active', 'retry')",
          )
        ).rows[0].n === 0,
    );
    expect(runs.slice(before).map((r) => r.key)).toEqual(["p2/items", "p3/items"]);
    // Parked: visible with its reason, not polled; a push for it is consumed without a run.
    const [bad] = await accounts.keys("bad");
    expect(bad).toMatchObject({
      parkedReason: expect.stringContaining("invalid_grant"),
      nextPollAt: null,
    });
    await (workers[0] as Worker).notify("bad/items", { debounceMs: 0 });
    await until(
      async () =>
        (
          await pool.query(
            "SELECT count(*)::int AS n FROM deltasync_boss.job WHERE state IN ('created', 'active', 'retry')",
          )
        ).rows[0].n === 0,
    );
    // Backoff: the flaky key's next poll is at least the minimum backoff (less jitter) away.
    const [flaky] = await accounts.keys("flaky");
    expect(flaky?.lastError).toContain("503");
    expect(Date.parse(flaky?.nextPollAt ?? "") - Date.now()).toBeGreaterThan(60_000 * 0.8 - 5_000);
    expect(runs.filter((r) => r.key === "bad/items")).toEqual([]);
    expect(overlap).toBe(false);
    expect(errors).toEqual([]);
    // Adding the account again (new credentials) unparks it.
    await accounts.add({ id: "bad", adapter: "memory", scopes: ["items"] });
    expect((await accounts.keys("bad"))[0]?.parkedReason).toBeNull();
    await Promise.all(workers.map((w) => w.stop()));
    expect(new Set(runs.map((r) => r.node)).size).toBeGreaterThan(0);
  });

  it.each([
    { where: "another node", id: "own1", holderSlots: 1, second: true },
    // Session advisory locks are re-entrant: the holder's own second slot must not run it too.
    { where: "the same node's second job slot", id: "own2", holderSlots: 2, second: false },
  ])(
    "a push taken by a node that doesn't hold the key ($where) still syncs it, after the holder's run",
    async ({ id, holderSlots, second }) => {
      const accounts = await createAccountRegistry({
        pool: pool as unknown as PgPool,
        spreadMs: 0,
      });
      const backend = createBackend(id, 30, 10);
      await accounts.add({ id, adapter: "memory", scopes: ["items"] });
      const key = `${id}/items`;
      let runs = 0;
      let active = 0;
      let overlap = false;
      // The first run holds the key (its lock) after syncing, until released.
      let release: () => void = () => {};
      const held = new Promise<void>((r) => (release = r));
      let holding: () => void = () => {};
      const isHolding = new Promise<void>((r) => (holding = r));
      const node = (slots: number) =>
        createWorker({
          pool: pool as unknown as PgPool,
          concurrency: slots,
          perAccount: slots,
          pollIntervalMs: 3_600_000,
          tickMs: 100,
          debounceMs: 50,
          getCredentials: () => ({}),
          async sync({ key: k, signal }) {
            if (k !== key) return;
            if (active > 0) overlap = true;
            active++;
            runs++;
            try {
              const mirror = await createPostgresMirror({
                pool: pool as unknown as PgPool,
                source: k,
              });
              await runSync(backend.server.store("alice").items, {
                ...mirror.syncOptions,
                key: k,
                signal,
              });
              if (runs === 1) {
                holding();
                await held;
              }
            } finally {
              active--;
            }
          },
        });
      const a = await node(holderSlots);
      const workers: Worker[] = [a];
      stopAll = () => Promise.all(workers.map((w) => w.stop()));
      await isHolding;
      const other = second ? await node(1) : a;
      if (second) workers.push(other);
      const mirrored = async () => {
        const mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: key });
        return isDeepStrictEqual(actualRows(await mirror.rows()), expectedRows(backend.server));
      };
      // A change after the holder's sync; pushes arrive at the other node and at a receiver.
      advance(backend, id, 1, 5);
      expect(await mirrored()).toBe(false);
      await other.notify(key, { debounceMs: 0 });
      const receiver = await createSyncQueue({ pool: pool as unknown as PgPool });
      await enqueueSync(receiver, key);
      await receiver.close();
      // A push job taken while the key is held is completed by re-queueing it behind the run.
      await until(
        async () =>
          (
            await pool.query(
              "SELECT count(*)::int AS n FROM deltasync_boss.job WHERE singleton_key = $1 AND state = 'completed'",
              [key],
            )
          ).rows[0].n >= 1,
      );
      expect(runs).toBe(1);
      release();
      await until(mirrored);
      expect(runs).toBeGreaterThanOrEqual(2);
      expect(overlap).toBe(false);
      await Promise.all(workers.map((w) => w.stop()));
    },
  );
  it("the safety poll's claim of due keys, made at every tick, is a prepared statement", async () => {
    const own = new pg.Pool({ connectionString: db.url, max: 2, application_name: "claim-test" });
    own.on("error", () => {});
    const worker = await createWorker({
      pool: own as unknown as PgPool,
      concurrency: 1,
      tickMs: 20,
      getCredentials: () => ({}),
      sync: async () => {},
      onError: () => {},
    });
    stopAll = () => worker.stop();
    // A tick of this worker has claimed due keys (an idle backend shows its last statement).
    await until(
      async () =>
        (
          await pool.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE application_name = 'claim-test' AND query LIKE 'UPDATE deltasync_keys SET next_poll_at%'`,
          )
        ).rows[0].n > 0,
    );
    await worker.stop();
    const clients = await Promise.all([own.connect(), own.connect()]);
    const texts = (
      await Promise.all(clients.map((c) => c.query("SELECT statement FROM pg_prepared_statements")))
    ).flatMap((r) => r.rows.map((row) => String(row.statement).trim()));
    for (const c of clients) c.release();
    await own.end();
    expect(texts.some((t) => t.startsWith("UPDATE deltasync_keys SET next_poll_at"))).toBe(true);
  });

  it("two jobs of one key fetched together (a retry beside the queued one) run one after the other; the lock session goes back to the pool as it came", async () => {
    const accounts = await createAccountRegistry({ pool: pool as unknown as PgPool, spreadMs: 0 });
    const id = "dup1";
    const key = `${id}/items`;
    const backend = createBackend(id, 30, 10);
    await accounts.add({ id, adapter: "memory", scopes: ["items"] });
    // The queued job (one per key) and a second one of the same key without its singleton key,
    // as a job back from a retry is: both wait before the worker starts, so one fetch takes both.
    const queue = await createSyncQueue({ pool: pool as unknown as PgPool });
    const before = await clock();
    await queue.enqueue(key);
    await queue.boss.insert([{ name: SYNC_QUEUE, data: { key } }]);
    await queue.close();
    const after = await clock();
    const own = new pg.Pool({ connectionString: db.url, max: 3 });
    own.on("error", () => {});
    let runs = 0;
    let active = 0;
    let overlap = false;
    const worker = await createWorker({
      pool: own as unknown as PgPool,
      concurrency: 2,
      perAccount: 2,
      pollIntervalMs: 3_600_000,
      tickMs: 50,
      getCredentials: () => ({}),
      async sync({ key: k, signal }) {
        if (active > 0) overlap = true;
        active++;
        runs++;
        try {
          await mirrorSync(backend, k, signal);
        } finally {
          active--;
        }
      },
    });
    stopAll = () => worker.stop();
    const open = () => openJobs(key);
    await until(async () => runs >= 2 && (await open()) === 0);
    // Both were taken by one fetch (one transaction: one start time); the second was re-queued.
    const started = await pool.query(
      `SELECT count(DISTINCT started_on)::int AS n, count(*)::int AS jobs FROM deltasync_boss.job
        WHERE data->>'key' = $1 AND created_on BETWEEN $2 AND $3`,
      [key, before, after],
    );
    expect(started.rows[0]).toEqual({ n: 1, jobs: 2 });
    expect(overlap).toBe(false);
    await worker.stop();
    // The lock session ran with asynchronous commits; the pool gets it back with the default.
    const clients = await Promise.all([own.connect(), own.connect(), own.connect()]);
    const settings = await Promise.all(
      clients.map(
        async (c) => (await c.query("SHOW synchronous_commit")).rows[0].synchronous_commit,
      ),
    );
    for (const c of clients) c.release();
    await own.end();
    expect(settings).toEqual(["on", "on", "on"]);
  });

  it("a key fetched again as its run ends runs under the lock it still holds; every key's lock is let go when the worker idles and when it stops", async () => {
    const accounts = await createAccountRegistry({ pool: pool as unknown as PgPool, spreadMs: 0 });
    const id = "relock1";
    const key = `${id}/items`;
    const backend = createBackend(id, 30, 10);
    await accounts.add({ id, adapter: "memory", scopes: ["items"] });
    const advisoryLocks = async () =>
      (
        await pool.query(
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
            WHERE l.locktype = 'advisory' AND d.datname = current_database()`,
        )
      ).rows[0].n as number;
    expect(await advisoryLocks()).toBe(0);
    const queue = await createSyncQueue({ pool: pool as unknown as PgPool });
    const own = new pg.Pool({ connectionString: db.url, max: 3 });
    own.on("error", () => {});
    let runs = 0;
    let active = 0;
    let overlap = false;
    const lockedDuringRuns: number[] = [];
    const worker = await createWorker({
      pool: own as unknown as PgPool,
      // One slot: the follow-up queued during the first run is fetched by the fetch that ends it.
      concurrency: 1,
      pollIntervalMs: 3_600_000,
      tickMs: 50,
      getCredentials: () => ({}),
      async sync({ key: k, signal }) {
        if (active > 0) overlap = true;
        active++;
        runs++;
        try {
          lockedDuringRuns.push(await advisoryLocks());
          if (runs === 1) {
            advance(backend, id, 1, 5);
            await queue.enqueue(key);
          }
          await mirrorSync(backend, k, signal);
        } finally {
          active--;
        }
      },
    });
    stopAll = () => worker.stop();
    await queue.enqueue(key);
    const open = () => openJobs(key);
    await until(async () => runs >= 2 && (await open()) === 0);
    expect(runs).toBe(2);
    expect(overlap).toBe(false);
    expect(lockedDuringRuns).toEqual([1, 1]);
    // Idle: a later fetch lets go of the key (locked twice, one unlock would leave it held).
    await until(async () => (await advisoryLocks()) === 0);
    const mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: key });
    expect(actualRows(await mirror.rows())).toEqual(expectedRows(backend.server));
    // Stopped right after a run: stop() lets go of the key the fetch loop had no time to.
    await queue.enqueue(key);
    await until(() => runs >= 3);
    await worker.stop();
    await queue.close();
    expect(await advisoryLocks()).toBe(0);
    await own.end();
  });

  it("under load, freed slots are refilled in batches (an eighth of the slots), not with a fetch per ended job", async () => {
    const accounts = await createAccountRegistry({ pool: pool as unknown as PgPool, spreadMs: 0 });
    const jobs = 160;
    const keys: string[] = [];
    for (let i = 0; i < jobs; i++) {
      await accounts.add({ id: `refill${i}`, adapter: "memory", scopes: ["items"] });
      keys.push(`refill${i}/items`);
    }
    const queue = await createSyncQueue({ pool: pool as unknown as PgPool });
    const since = await clock();
    await queue.enqueueMany(keys);
    await queue.close();
    let done = 0;
    const worker = await createWorker({
      pool: pool as unknown as PgPool,
      concurrency: 16,
      perAccount: 1,
      pollIntervalMs: 3_600_000,
      tickMs: 1000,
      getCredentials: () => ({}),
      async sync() {
        // Runs of spread lengths end one by one, as real ones do.
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
        done++;
      },
    });
    stopAll = () => worker.stop();
    await until(() => done >= jobs);
    await worker.stop();
    // A fetch is one transaction: its jobs share one started_on.
    const fetches = await pool.query(
      `SELECT count(DISTINCT started_on)::int AS n, count(*)::int AS jobs FROM deltasync_boss.job
        WHERE data->>'key' LIKE 'refill%' AND created_on >= $1`,
      [since],
    );
    // (Adding an account queues its first sync too: some keys ran twice.)
    const ran = fetches.rows[0].jobs as number;
    expect(ran).toBeGreaterThanOrEqual(jobs);
    // 16 slots: two at a time at least (the first fetch takes 16).
    // (Plus a fetch at a tick, or of the last job, that may take one.)
    expect(fetches.rows[0].n).toBeLessThanOrEqual(1 + (ran - 16) / 2 + 3);
  });
});
