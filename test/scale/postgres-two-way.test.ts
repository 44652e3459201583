/**
 * Two-way sync on PostgreSQL: the row outbox (the same document as the other forms after any
 * commits, documents of an older version moved into rows, the two-way conformance kit over it),
 * and the PostgreSQL mirror's edits (row and outbox entry in one transaction, also when the
 * connection dies between them), pulls that leave pending edits alone, and pushes that crash
 * between the server's write and the outbox's bookkeeping. Own database per file.
 */
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { StateError, TransientError } from "../../src/core/errors.js";
import { createPostgresMirror } from "../../src/orchestrator/postgres-mirror.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { createPostgresStateStore, type PgClient, type PgPool } from "../../src/stores/postgres.js";
import { postgresOutboxRows } from "../../src/stores/postgres-outbox.js";
import type { StateStore } from "../../src/stores/types.js";
import { checkTwoWayConformance } from "../../src/testing/two-way.js";
import { type OutboxDoc, record } from "../../src/two-way/log.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";
import type { OutboxEntry, WriteTarget } from "../../src/two-way/types.js";
import { memoryTwoWayHarness } from "../two-way/harnesses.js";
import { applyOp, outboxOpArbitrary } from "../two-way/outbox-ops.js";
import { createTestDatabase, pgReachable } from "./pg.js";

const up = await pgReachable();
if (!up && process.env.CI) throw new Error("PostgreSQL on 127.0.0.1:5432 is unreachable");
const RUNS = Number(process.env.PG_TWO_WAY_RUNS ?? 40);

describe.skipIf(!up)("two-way on PostgreSQL", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;
  let n = 0;
  const pgPool = () => pool as unknown as PgPool;
  const store = (table = `st${++n}`) => createPostgresStateStore({ pool, table });
  beforeAll(async () => {
    db = await createTestDatabase("ds_two_way");
    pool = new pg.Pool({ connectionString: db.url, max: 6 });
    pool.on("error", () => {});
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("the row outbox holds what the document form holds, through failed commits and a second handle", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(outboxOpArbitrary, { maxLength: 30 }), async (ops) => {
        const table = `r${++n}`;
        const now = () => 1;
        const rows = createOutbox(await store(table), { now });
        const { outboxRows: _rows, ...plain } = createMemoryStateStore();
        const docs = createOutbox(plain as StateStore, { now });
        for (const op of ops) {
          expect(await applyOp(rows, op)).toEqual(await applyOp(docs, op));
          expect(await rows.read("p")).toEqual(await docs.read("p"));
        }
        const again = createOutbox(await store(table));
        expect(await again.read("p")).toEqual(await docs.read("p"));
        expect(await again.pairs()).toEqual(await rows.pairs());
      }),
      { numRuns: 25 },
    );
  }, 120_000);

  it("moves a pair's document left by an older version into rows, losing nothing", async () => {
    const table = `legacy${++n}`;
    const legacy = await store(table);
    const doc = {
      v: 1,
      next: 3,
      cursor: 0,
      entries: [
        { kind: "update", localId: "a", sourcekey: "k1", changeKey: "1", data: 1, seq: 1, at: 5 },
        { kind: "delete", localId: "b", sourcekey: "k2", seq: 2, at: 6 },
      ],
      conflicts: [],
      echoes: [{ sourcekey: "k0", changeKey: "9" }],
    };
    expect(await legacy.compareAndSet("outbox:p", undefined, JSON.stringify(doc))).toBe(true);
    const outbox = createOutbox(await store(table));
    expect(await outbox.pairs()).toEqual(["p"]);
    expect(await outbox.pending("p")).toEqual(doc.entries);
    await outbox.record("p", { kind: "update", localId: "c", sourcekey: "k3", data: 2 });
    expect(await legacy.get("outbox:p")).toBeUndefined();
    const again = createOutbox(await store(table));
    expect((await again.pending("p")).map((e) => e.localId)).toEqual(["a", "b", "c"]);
    expect(
      await again.isEcho("p", { sourcekey: "k0", type: "item", changeKey: "9", data: 0 }),
    ).toBe(true);
  });

  it(`the two-way conformance kit (memory server) with its outbox in PostgreSQL rows: ${RUNS} histories`, async () => {
    await checkTwoWayConformance(
      { ...memoryTwoWayHarness(), name: "memory, outbox in PostgreSQL", store: () => store() },
      { numRuns: RUNS },
    );
  }, 600_000);

  /** A memory server with items, a PostgreSQL mirror of it, and pull / push. */
  async function mirrored(pool2: PgPool = pgPool(), table = `m${++n}`) {
    const server = createMemoryServer();
    const mail = server.createStore("alice");
    const inbox = mail.createFolder({ name: "Inbox", kind: "mail" });
    const keys = ["a", "b", "c"].map((s) => inbox.createItem({ s }));
    const target = memoryWriteTarget(server, inbox.sourcekey);
    const open = (p: PgPool = pool2) =>
      createPostgresMirror({ pool: p, table, source: "memory:alice", keyFor: target.keyFor });
    const mirror = await open();
    const pull = (m = mirror) => runSync(mail.items, { ...m.syncOptions, key: m.source });
    const pushAll = (m = mirror, t: WriteTarget = target) =>
      push(t, m.outbox, { pair: m.source, ...m.pushCallbacks });
    await pull();
    return { server, inbox, keys, target, table, mirror, open, pull, pushAll };
  }
  const fieldsOf = (data: unknown) => (data as { fields?: unknown }).fields;

  it("a writer that commits while another waits for the pair's lock is seen by the waiter", async () => {
    // The lock and the first read are one statement, whose read keeps the snapshot taken
    // before the wait: the waiter must notice the version moved and read the rows again.
    const table = `w${++n}`;
    const writer = postgresOutboxRows(pgPool(), table);
    await writer.ready();
    const change = (localId: string) =>
      ({ kind: "delete", localId, sourcekey: `s-${localId}` }) as const;
    const waitsForLock = async () => {
      for (let i = 0; i < 200; i++) {
        const r = await pool.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        );
        if (Number(r.rows[0]?.n) > 0) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error("the waiter never waited for the lock");
    };
    const ids = (doc: OutboxDoc) => doc.entries.map((e) => e.localId);
    // p: the waiter has the pair cached at the version before the commit; q: a new pair.
    for (const pair of ["p", "q"]) {
      const waiter = postgresOutboxRows(pgPool(), table);
      if (pair === "p") await waiter.update(pair, (doc) => record(doc, change("a"), 1));
      const client = await pool.connect();
      await client.query("BEGIN");
      await writer.inTransaction(client, pair, (doc) => void record(doc, change("b"), 2));
      const seen = waiter.update(pair, (doc) => ids(doc));
      await waitsForLock();
      await client.query("COMMIT");
      writer.ended(pair, true);
      client.release();
      expect(await seen).toEqual(pair === "p" ? ["a", "b"] : ["b"]);
      // And a write by the waiter after such a wait keeps the writer's entry.
      await waiter.update(pair, (doc) => record(doc, change("c"), 3));
      expect(ids(await postgresOutboxRows(pgPool(), table).read(pair))).toEqual(
        pair === "p" ? ["a", "b", "c"] : ["b", "c"],
      );
    }
  });

  it("mirror edits reach the server; pulls leave pending edits alone; a conflict pauses", async () => {
    const { server, inbox, keys, mirror, pull, pushAll } = await mirrored();
    const [a, b, c] = keys as [string, string, string];
    const idA = (await mirror.get(a))?.id as string;
    const idB = (await mirror.get(b))?.id as string;
    await mirror.edits.update(idA, { fields: { s: "mine" }, read: false });
    await mirror.edits.markRead(idB, true);
    await mirror.edits.remove((await mirror.get(c))?.id as string);
    const created = await mirror.edits.create({
      data: { fields: { s: "new" }, read: false },
      parentKey: inbox.sourcekey,
    });
    expect((await mirror.get(a))?.updatedAtSource).toBe("local");
    // A remote edit of a pending row: the pull leaves the local edit alone.
    server.updateItem(a, { s: "theirs" });
    await pull();
    expect(fieldsOf((await mirror.get(a))?.data)).toEqual({ s: "mine" });
    const paused = await pushAll();
    expect(paused).toMatchObject({ status: "paused", conflict: { kind: "edit" } });
    await mirror.outbox.resolve(paused.conflict?.id as string, "local");
    expect(await pushAll()).toMatchObject({ status: "done" });
    expect(server.item(a).fields).toEqual({ s: "mine" });
    expect(server.item(b).read).toBe(true);
    expect(server.allItems().map((i) => i.fields)).toContainEqual({ s: "new" });
    expect(server.allItems()).toHaveLength(3);
    // Our own pushes do not come back as remote edits; the copy equals the server.
    await pull();
    const rows = await mirror.rows();
    expect(rows.map((r) => fieldsOf(r.data)).sort()).toEqual(
      server
        .allItems()
        .map((i) => i.fields)
        .sort(),
    );
    expect(rows.find((r) => r.id === created)?.sourcekey).toBe(
      server.allItems().find((i) => (i.fields as { s: string }).s === "new")?.sourcekey,
    );
    // A full sync from nothing keeps a row whose create is not pushed yet.
    const later = await mirror.edits.create({ data: { fields: { s: "later" } } });
    await mirror.clear();
    await pull();
    expect((await mirror.rows()).some((r) => r.id === later)).toBe(true);
    await mirror.close();
  });

  it("a pulled duplicate merged into a create's row (write-back or onRemote) hands over its pending edits", async () => {
    const { keys, inbox, mirror, open } = await mirrored();
    const [a, b] = keys as [string, string, string];
    const owners = async (m = mirror) =>
      (await m.outbox.pending(m.source)).map((e) => [e.kind, e.localId]);
    // The server answers a create with the key a pull already delivered (and the app edited).
    const created = await mirror.edits.create({
      data: { fields: { s: "new" } },
      parentKey: inbox.sourcekey,
    });
    const duplicate = (await mirror.get(a))?.id as string;
    await mirror.edits.update(duplicate, { fields: { s: "edited" }, read: false });
    const create = (await mirror.outbox.pending(mirror.source))[0] as OutboxEntry;
    await mirror.pushCallbacks.onPushed(create, { sourcekey: a, changeKey: "1" }, { last: true });
    expect(await owners()).toEqual([
      ["create", created],
      ["update", created],
    ]);
    expect((await mirror.rows()).filter((r) => r.sourcekey === a).map((r) => r.id)).toEqual([
      created,
    ]);
    // A conflict resolved for the server puts its object in the entry's row; a row holding
    // that key already is the same object.
    const second = await mirror.edits.create({
      data: { fields: { s: "two" } },
      parentKey: inbox.sourcekey,
    });
    const other = (await mirror.get(b))?.id as string;
    await mirror.edits.markRead(other, true);
    const entry = (await mirror.outbox.pending(mirror.source)).find(
      (e) => e.localId === second,
    ) as OutboxEntry;
    await mirror.pushCallbacks.onRemote(entry, {
      sourcekey: b,
      type: "item",
      parentKey: inbox.sourcekey,
      changeKey: "2",
      data: { fields: { s: "b" }, read: false },
    });
    expect((await owners()).filter(([kind]) => kind === "read")).toEqual([["read", second]]);
    const reopened = await open();
    expect((await owners(reopened)).filter(([kind]) => kind === "read")).toEqual([
      ["read", second],
    ]);
    expect((await reopened.rows()).filter((r) => r.sourcekey === b).map((r) => r.id)).toEqual([
      second,
    ]);
    await reopened.close();
    await mirror.close();
  });

  it("an edit's row and its outbox entry commit together or not at all", async () => {
    const { keys, mirror, table } = await mirrored();
    const id = (await mirror.get(keys[0] as string))?.id as string;
    await pool.query(`INSERT INTO ${table}_outbox (key, state) VALUES ($1, $2)`, [
      "outbox:memory:alice",
      "{not json",
    ]);
    await expect(mirror.edits.update(id, { fields: { s: "lost?" } })).rejects.toThrow(StateError);
    expect(fieldsOf((await mirror.get(keys[0] as string))?.data)).toEqual({ s: "a" });
    await mirror.close();
  });

  it("a connection dying between an edit's row write and its outbox entry leaves neither", async () => {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    let armed = false;
    // The outbox's save statement is the edit's last write: kill the backend just before it.
    const hooked: PgPool = {
      query: (text, values) => pool.query(text, values) as never,
      async connect() {
        const client = (await pool.connect()) as unknown as pg.PoolClient;
        client.on("error", () => {});
        return {
          release: (e) => client.release(e as boolean),
          async query(text, values) {
            if (armed && text.includes("_ob_meta SET version")) {
              armed = false;
              await admin.query("SELECT pg_terminate_backend($1)", [
                (client as unknown as { processID: number }).processID,
              ]);
            }
            return client.query(text, values) as never;
          },
        } as PgClient;
      },
    };
    const { keys, open, table } = await mirrored();
    const mirror = await open(hooked);
    const id = (await mirror.get(keys[0] as string))?.id as string;
    armed = true;
    await expect(mirror.edits.update(id, { fields: { s: "mine" } })).rejects.toThrow(
      TransientError,
    );
    armed = true;
    await expect(
      mirror.edits.create({ data: { fields: { s: "new" } }, parentKey: "x" }),
    ).rejects.toThrow(TransientError);
    await admin.end();
    const fresh = await open();
    expect(fieldsOf((await fresh.get(keys[0] as string))?.data)).toEqual({ s: "a" });
    expect(await fresh.count()).toBe(3);
    expect(await fresh.outbox.pending("memory:alice")).toEqual([]);
    // The same edit goes through once the database answers.
    await fresh.edits.update(id, { fields: { s: "mine" } });
    expect((await fresh.outbox.pending("memory:alice")).map((e) => e.kind)).toEqual(["update"]);
    expect(table).toBeTruthy();
  });

  it("a push crashing after the server's write, or in the write-back, resumes with every create once", async () => {
    const { server, inbox, target, mirror, open, pull, pushAll } = await mirrored();
    const ids: string[] = [];
    for (const s of ["x", "y", "z"]) {
      ids.push(await mirror.edits.create({ data: { fields: { s } }, parentKey: inbox.sourcekey }));
    }
    // The server takes the second create, then the process dies before the outbox advances.
    let writes = 0;
    const crashing: WriteTarget = {
      ...target,
      create: async (e, ctx) => {
        const r = await target.create(e, ctx);
        if (++writes === 2) throw new Error("crash after the server's write");
        return r;
      },
    };
    await expect(pushAll(mirror, crashing)).rejects.toThrow();
    expect(await mirror.outbox.lastPushed("memory:alice")).toBe(1);
    // A new process; its write-back dies once too.
    const second = await open();
    let failed = false;
    await expect(
      push(target, second.outbox, {
        pair: second.source,
        ...second.pushCallbacks,
        onPushed: async (entry, result, info) => {
          if (!failed) {
            failed = true;
            throw new Error("crash in the write-back");
          }
          return second.pushCallbacks.onPushed(entry, result, info);
        },
      }),
    ).rejects.toThrow();
    const third = await open();
    expect(await pushAll(third)).toMatchObject({ status: "done" });
    await pull(third);
    const labels = server.allItems().map((i) => (i.fields as { s: string }).s);
    expect(labels.sort()).toEqual(["a", "b", "c", "x", "y", "z"]);
    const rows = await third.rows();
    expect(rows).toHaveLength(6);
    for (const id of ids) {
      const row = rows.find((r) => r.id === id);
      expect(row?.changeKey).toBe(server.item(row?.sourcekey as string).changeKey);
    }
    await mirror.close();
  });
});
