import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { ConflictError } from "../../src/core/errors.js";
import { createPostgresMirror } from "../../src/orchestrator/postgres-mirror.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import type { PgClient, PgPool } from "../../src/stores/postgres.js";
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

const child = fileURLToPath(new URL("./mirror-child.ts", import.meta.url));
function runChild(
  url: string,
  account: string,
  version: number,
  env: Record<string, string> = {},
): Promise<{ signal: string | null; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", child, url, account, String(version)],
      { env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        if (error && !error.signal) throw new Error(`child failed: ${stderr}`);
        resolve({ signal: (error?.signal as string | undefined) ?? null, stdout });
      },
    );
  });
}

describe.skipIf(!up)("PostgreSQL mirror", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase("ds_mirror");
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on("error", () => {});
    // Created once here so the audit trigger exists before any child writes.
    await createPostgresMirror({ pool: pool as unknown as PgPool, source: "setup" });
    await pool.query(AUDIT_SQL("mirror"));
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("keeps source, stable id, created/updated locally and updated-at-source; reads, deletes, folder cascades", async () => {
    const server = createMemoryServer();
    const store = server.createStore("alice");
    const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
    const a = inbox.createItem({ subject: "a" });
    const b = inbox.createItem({ subject: "b" }, { read: true });
    const mirror = await createPostgresMirror({
      pool: pool as unknown as PgPool,
      source: "memory:alice",
    });
    await runSync(inbox, { ...mirror.syncOptions, key: mirror.source });
    const before = await mirror.get(a);
    expect(before).toMatchObject({
      source: "memory:alice",
      sourcekey: a,
      type: "item",
      parentKey: inbox.sourcekey,
      isRead: false,
      updatedAtSource: "memory:alice",
      data: { fields: { subject: "a" }, read: false },
    });
    expect(before?.id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 5));
    server.updateItem(a, { subject: "a2" });
    server.markRead(a, true);
    server.deleteItem(b);
    await runSync(inbox, { ...mirror.syncOptions, key: mirror.source });
    const after = await mirror.get(a);
    expect(after?.id).toBe(before?.id);
    expect(after?.createdLocally).toBe(before?.createdLocally);
    expect((after?.updatedLocally ?? "") > (before?.updatedLocally ?? "")).toBe(true);
    expect(after).toMatchObject({ isRead: true, data: { fields: { subject: "a2" }, read: true } });
    expect(await mirror.get(b)).toBeUndefined();
    expect(await mirror.count()).toBe(1);

    const tree = await createPostgresMirror({ pool: pool as unknown as PgPool, source: "tree" });
    const parent = store.createFolder({ name: "P", kind: "mail" });
    store.createFolder({ name: "C", kind: "mail", parentKey: parent.sourcekey });
    const hierarchy = store.subtree.hierarchy;
    await runSync(hierarchy, { ...tree.syncOptions, key: tree.source });
    expect(await tree.count()).toBe(3);
    store.deleteFolder(parent.sourcekey);
    await runSync(hierarchy, { ...tree.syncOptions, key: tree.source });
    expect((await tree.rows()).map((r) => r.sourcekey)).toEqual([inbox.sourcekey]);
    expect(await mirror.count()).toBe(1);
  });

  it("a state save with nothing to apply writes the state row alone (no two-way rows locked or loaded)", async () => {
    const p = pool as unknown as PgPool;
    const mirror = await createPostgresMirror({ pool: p, source: "quiet-poll" });
    const queries: string[] = [];
    const counting = {
      query: (text: string, values?: unknown[]) => {
        queries.push(text);
        return p.query(text, values);
      },
      async connect() {
        const client = await p.connect();
        return new Proxy(client, {
          get(target, prop, receiver) {
            if (prop !== "query") return Reflect.get(target, prop, receiver);
            return (text: string, values?: unknown[]) => {
              queries.push(text);
              return target.query(text, values);
            };
          },
        });
      },
    } as unknown as PgPool;
    const quiet = await createPostgresMirror({ pool: counting, source: "quiet-poll" });
    queries.length = 0;
    const before = await quiet.syncOptions.getState?.();
    expect(await quiet.syncOptions.saveState?.("state-2", before)).toBe(true);
    expect(await mirror.state()).toBe("state-2");
    const written = queries.filter((q) => !/^(BEGIN|COMMIT|ROLLBACK)/.test(q.trim()));
    expect(written.map((q) => q.trim().split(/\s+/).slice(0, 3).join(" "))).toEqual([
      "SELECT state FROM",
      "INSERT INTO mirror_state",
    ]);
    const meta = await pool.query(
      "SELECT count(*)::int AS n FROM mirror_outbox_ob_meta WHERE key LIKE $1",
      ["%quiet-poll%"],
    );
    expect(meta.rows[0]?.n).toBe(0);
  });

  it("names the state's, the batches' and the outbox's statements on pg's own pool (prepared once per connection) and sends plain text to any other PgQueryable", async () => {
    const server = createMemoryServer();
    const folder = server.createStore("alice").createFolder({ name: "Inbox", kind: "mail" });
    let n = 0;
    const one = new pg.Pool({ connectionString: db.url, max: 1 });
    one.on("error", () => {});
    try {
      for (let round = 0; round < 2; round++) {
        folder.createItem({ subject: `m${++n}` });
        const mirror = await createPostgresMirror({
          pool: one as unknown as PgPool,
          source: "named",
        });
        await runSync(folder, { ...mirror.syncOptions, key: "named" });
      }
      // The pool's one connection holds the statements every round makes, prepared.
      const prepared = await one.query("SELECT statement FROM pg_prepared_statements");
      const texts = prepared.rows.map((r) => String(r.statement).replace(/\s+/g, " ").trim());
      for (const start of [
        "SELECT state FROM mirror_state",
        "UPDATE mirror_state",
        "INSERT INTO mirror_generation",
        "INSERT INTO mirror (source, sourcekey",
        "WITH locked AS (INSERT INTO mirror_outbox_ob_meta",
      ]) {
        expect(
          texts.some((t) => t.startsWith(start)),
          start,
        ).toBe(true);
      }
    } finally {
      await one.end();
    }
    // Another driver behind PgQueryable is only promised `query(text, values)`.
    const texts: unknown[] = [];
    const plain =
      (q: { query(text: string, values?: unknown[]): Promise<unknown> }) =>
      (text: string, values?: unknown[]) => {
        texts.push(text);
        if (typeof text !== "string") throw new TypeError("this driver takes SQL text only");
        return q.query(text, values);
      };
    const wrapped = {
      query: plain(pool),
      async connect() {
        const client = await pool.connect();
        return { query: plain(client), release: (e?: Error | boolean) => client.release(e) };
      },
    } as unknown as PgPool;
    for (let round = 0; round < 2; round++) {
      folder.createItem({ subject: `m${++n}` });
      const mirror = await createPostgresMirror({ pool: wrapped, source: "plain" });
      await runSync(folder, { ...mirror.syncOptions, key: "plain" });
      expect((await mirror.rows()).length).toBe(n);
    }
    expect(texts.length).toBeGreaterThan(4);
    expect(texts.every((t) => typeof t === "string")).toBe(true);
  });

  it("a full sync after a lost cursor sweeps what the server no longer has (generations)", async () => {
    const server = createMemoryServer({ retention: 0, pageSize: 3 });
    const store = server.createStore("alice");
    const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
    const keys = Array.from({ length: 8 }, (_, i) => inbox.createItem({ subject: `m${i}` }));
    const mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: "sweep" });
    await runSync(inbox, { ...mirror.syncOptions, key: mirror.source, batchSize: 3 });
    const idBefore = (await mirror.get(keys[0] as string))?.id;
    server.deleteItem(keys[1] as string);
    server.deleteItem(keys[2] as string);
    server.compact(); // the saved cursor is now too old: StateInvalidError → reset → full sync
    const result = await runSync(inbox, {
      ...mirror.syncOptions,
      key: mirror.source,
      batchSize: 3,
    });
    expect(result.reset).toBe(true);
    expect(actualRows(await mirror.rows())).toEqual(expectedRows(server));
    expect((await mirror.get(keys[0] as string))?.id).not.toBe(undefined);
    expect(idBefore).toBeDefined();
  });

  it("a racing second writer loses its compare-and-set and its rows are rolled back", async () => {
    const backend = createBackend("race", 60, 20);
    const mirror = await createPostgresMirror({ pool: pool as unknown as PgPool, source: "race" });
    await runSync(backend.server.store("alice").items, { ...mirror.syncOptions, key: "race" });
    advance(backend, "race", 1, 10);
    const stale = await mirror.state();
    // Another worker advances the state first.
    await runSync(backend.server.store("alice").items, { ...mirror.syncOptions, key: "race" });
    const rowsAfter = await mirror.rows();
    const slow = await createPostgresMirror({ pool: pool as unknown as PgPool, source: "race" });
    await slow.syncOptions.onUpdated([{ sourcekey: "ghost", type: "item", data: {} }]);
    await expect(slow.syncOptions.saveState("next", stale)).resolves.toBe(false);
    expect(await mirror.rows()).toEqual(rowsAfter);
    // Through runSync the lost race is a ConflictError.
    const racing = runSync(backend.server.store("alice").items, {
      ...slow.syncOptions,
      getState: async () => stale,
      key: "race-2",
    });
    await expect(racing).rejects.toBeInstanceOf(ConflictError);
  });

  it("a SIGKILL mid-transaction or right after a commit: resumed, mirror == backend, no batch twice", async () => {
    // Two accounts in parallel: one killed inside its transaction during the full sync and right
    // after a commit during the incremental round, the other the other way round. Each resumes in
    // this process, a different one from the killed child.
    const scenarios: [string, string, string][] = [
      ["k-mid", "midTransaction", "afterCommit"],
      ["k-after", "afterCommit", "midTransaction"],
    ];
    const resume = async (account: string, version: number) => {
      const backend = createBackend(account, 300, 50);
      advance(backend, account, version, 40);
      const mirror = await createPostgresMirror({
        pool: pool as unknown as PgPool,
        source: account,
      });
      await runSync(backend.server.store("alice").items, {
        ...mirror.syncOptions,
        key: account,
        batchSize: 40,
      });
      return { mirror, backend };
    };
    await Promise.all(
      scenarios.map(async ([account, full, incremental]) => {
        const killed = await runChild(db.url, account, 0, { KILL_PHASE: full, KILL_AT: "4" });
        expect(killed.signal).toBe("SIGKILL");
        const mirror = await createPostgresMirror({
          pool: pool as unknown as PgPool,
          source: account,
        });
        const count = await mirror.count();
        // Whole batches of 40 only: the killed transaction is wholly there or wholly absent.
        expect(count % 40).toBe(0);
        expect(count).toBeLessThan(300);
        await resume(account, 0);
        const again = await runChild(db.url, account, 1, { KILL_PHASE: incremental, KILL_AT: "2" });
        expect(again.signal).toBe("SIGKILL");
        const done = await resume(account, 1);
        expect(actualRows(await done.mirror.rows())).toEqual(expectedRows(done.backend.server));
      }),
    );
    const sources = scenarios.map(([account]) => account);
    expect((await pool.query(AUDIT_DUPLICATES("mirror"), [sources])).rows).toEqual([]);
  });

  it("a connection killed by the server at a commit: the run retries and ends equal, no batch twice", async () => {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    let commits = 0;
    const killAt = new Set([2, 5]);
    const hooked: PgPool = {
      query: (text, values) => pool.query(text, values) as never,
      async connect() {
        const client = (await pool.connect()) as unknown as PgClient & { processID?: number };
        const pid = (client as unknown as { processID: number }).processID;
        (client as unknown as pg.PoolClient).on("error", () => {});
        return {
          release: (e) => client.release(e),
          async query(text, values) {
            if (counting && text === "COMMIT" && killAt.has(++commits)) {
              await admin.query("SELECT pg_terminate_backend($1)", [pid]);
            }
            return client.query(text, values);
          },
        };
      },
    };
    const backend = createBackend("conn", 300, 50);
    // Only the commits of the sync's batches count (not the tables' creation).
    let counting = false;
    const mirror = await createPostgresMirror({ pool: hooked, source: "conn" });
    counting = true;
    const result = await runSync(backend.server.store("alice").items, {
      ...mirror.syncOptions,
      key: "conn",
      batchSize: 40,
      retry: { retries: 5, minDelayMs: 1, maxDelayMs: 5 },
    });
    await admin.end();
    expect(commits).toBeGreaterThan(5);
    expect(result.updated).toBeGreaterThanOrEqual(300);
    expect(actualRows(await mirror.rows())).toEqual(expectedRows(backend.server));
    expect((await pool.query(AUDIT_DUPLICATES("mirror"), [["conn"]])).rows).toEqual([]);
  });
});
