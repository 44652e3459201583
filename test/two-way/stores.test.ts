/**
 * The outbox over every state store: concurrent writers (two outbox instances on one store, as
 * two processes) never lose or duplicate an entry, and a push commits with compare-and-set.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { PushRaceError } from "../../src/core/errors.js";
import { KeyedRunner } from "../../src/orchestrator/keyed.js";
import { createFileStateStore } from "../../src/stores/file.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { createPostgresStateStore } from "../../src/stores/postgres.js";
import { createSqliteStateStore } from "../../src/stores/sqlite.js";
import type { StateStore } from "../../src/stores/types.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";

const dir = mkdtempSync(join(tmpdir(), "deltasync-outbox-"));
const PG_URL = process.env.DELTASYNC_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/test";
const pgTables: string[] = [];
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (pgTables.length === 0) return;
  const pg = await import("pg");
  const client = new pg.default.Client({ connectionString: PG_URL });
  await client.connect();
  for (const t of pgTables) await client.query(`DROP TABLE IF EXISTS ${t}`);
  await client.end();
});
const pgUp = await new Promise<boolean>((resolve) => {
  const s = createConnection({ host: "127.0.0.1", port: 5432 });
  s.once("connect", () => {
    s.destroy();
    resolve(true);
  });
  s.once("error", () => resolve(false));
});
if (!pgUp) console.warn("skipping the PostgreSQL outbox tests: nothing listens on 127.0.0.1:5432");

let n = 0;
/** Two handles on one store, as two processes would open it. */
const factories: [string, () => Promise<[StateStore, StateStore]>, boolean][] = [
  [
    "memory",
    async () => {
      const s = createMemoryStateStore();
      return [s, s];
    },
    false,
  ],
  [
    "file",
    async () => {
      const f = join(dir, `o${++n}.json`);
      return [createFileStateStore(f), createFileStateStore(f)];
    },
    false,
  ],
  [
    "sqlite",
    async () => {
      const f = join(dir, `o${++n}.sqlite`);
      return [createSqliteStateStore(f), createSqliteStateStore(f)];
    },
    false,
  ],
  [
    "postgres",
    async () => {
      const table = `ds_outbox_${process.pid}_${++n}`;
      pgTables.push(table);
      const a = await createPostgresStateStore({ connectionString: PG_URL, table });
      return [a, await createPostgresStateStore({ connectionString: PG_URL, table })];
    },
    !pgUp,
  ],
];

describe.each(factories)("outbox on the %s store", (_name, open, skip) => {
  it.skipIf(skip)("two writers at once lose nothing and never reuse a seq", async () => {
    const [s1, s2] = await open();
    const a = createOutbox(s1);
    const b = createOutbox(s2);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).record("p", {
          kind: "update",
          localId: `x${i}`,
          sourcekey: `k${i}`,
          data: i,
        }),
      ),
    );
    const pending = await a.pending("p");
    expect(pending.map((e) => e.localId).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `x${i}`).sort(),
    );
    expect(new Set(pending.map((e) => e.seq)).size).toBe(20);
    expect(await b.pairs()).toEqual(["p"]);
    await a.close();
    if (s2 !== s1) await b.close();
  });

  it.skipIf(skip)(
    "two pushers on one pair: the loser gets PushRaceError, nothing twice",
    async () => {
      const [s1, s2] = await open();
      const server = createMemoryServer();
      const folder = server.createStore("a").createFolder({ name: "F", kind: "mail" });
      const target = memoryWriteTarget(server, folder.sourcekey);
      const a = createOutbox(s1);
      const b = createOutbox(s2);
      for (let i = 0; i < 5; i++) {
        await a.record("p", {
          kind: "create",
          localId: `n${i}`,
          sourcekey: `local:n${i}`,
          data: { fields: { i } },
        });
      }
      // Separate runners: two processes, so the in-process serialisation does not apply.
      const results = await Promise.allSettled([
        push(target, a, { pair: "p", runner: new KeyedRunner() }),
        push(target, b, { pair: "p", runner: new KeyedRunner() }),
      ]);
      for (const r of results) {
        if (r.status === "rejected") expect(r.reason).toBeInstanceOf(PushRaceError);
      }
      await push(target, a, { pair: "p" });
      expect(
        server
          .allItems()
          .map((i) => i.fields)
          .sort(),
      ).toHaveLength(5);
      expect(await a.pending("p")).toEqual([]);
      expect(await a.lastPushed("p")).toBe(5);
      await a.close();
      if (s2 !== s1) await b.close();
    },
  );
});

describe("the SQLite row outbox", () => {
  it("moves a pair's document left by an older version into rows, losing nothing", async () => {
    const file = join(dir, `legacy${++n}.sqlite`);
    // An older version's outbox: the whole document in the state table.
    const legacy = createSqliteStateStore(file);
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
    await legacy.close();

    const outbox = createOutbox(createSqliteStateStore(file));
    expect(await outbox.pairs()).toEqual(["p"]);
    expect(await outbox.pending("p")).toEqual(doc.entries);
    expect(
      await outbox.isEcho("p", { sourcekey: "k0", type: "item", changeKey: "9", data: 0 }),
    ).toBe(true);
    await outbox.record("p", { kind: "update", localId: "c", sourcekey: "k3", data: 2 });
    expect((await outbox.pending("p")).map((e) => e.seq)).toEqual([1, 2, 3]);
    await outbox.close();
    // The document is gone from the state table; a second handle reads the rows.
    const states = createSqliteStateStore(file);
    expect(await states.get("outbox:p")).toBeUndefined();
    const again = createOutbox(states);
    expect((await again.pending("p")).map((e) => e.localId)).toEqual(["a", "b", "c"]);
    await again.close();
  });
});
