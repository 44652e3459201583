import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { StateError } from "../../src/core/errors.js";
import { createFileStateStore } from "../../src/stores/file.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { createPostgresStateStore } from "../../src/stores/postgres.js";
import { createSqliteStateStore } from "../../src/stores/sqlite.js";
import type { StateStore } from "../../src/stores/types.js";

const dir = mkdtempSync(join(tmpdir(), "deltasync-stores-"));
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

async function pgReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port: 5432 });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

const PG_URL = process.env.DELTASYNC_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/test";
const pgUp = await pgReachable();
if (!pgUp) {
  if (process.env.CI)
    throw new Error("PostgreSQL on 127.0.0.1:5432 is unreachable: CI must have it");
  console.warn("skipping PostgreSQL state store tests: nothing listens on 127.0.0.1:5432");
}

let n = 0;
const factories: [string, () => Promise<StateStore>, boolean][] = [
  ["memory", async () => createMemoryStateStore(), false],
  ["file", async () => createFileStateStore(join(dir, `s${++n}.json`)), false],
  ["sqlite", async () => createSqliteStateStore(join(dir, `s${++n}.sqlite`)), false],
  [
    "postgres",
    async () => {
      const table = `ds_test_${process.pid}_${++n}`;
      pgTables.push(table);
      return createPostgresStateStore({ connectionString: PG_URL, table });
    },
    !pgUp,
  ],
];

describe.each(factories)("%s state store", (_name, make, skip) => {
  it.skipIf(skip)("gets, compare-and-sets, deletes, lists", async () => {
    const store = await make();
    try {
      expect(await store.get("a")).toBeUndefined();
      expect(await store.compareAndSet("a", "x", "s1")).toBe(false);
      expect(await store.compareAndSet("a", undefined, "s1")).toBe(true);
      expect(await store.compareAndSet("a", undefined, "s2")).toBe(false);
      expect(await store.get("a")).toBe("s1");
      expect(await store.compareAndSet("a", "s1", "s2")).toBe(true);
      expect(await store.compareAndSet("a", "s1", "s3")).toBe(false);
      expect(await store.get("a")).toBe("s2");
      expect(await store.compareAndSet("b:c/d", undefined, "t")).toBe(true);
      expect(await store.keys()).toEqual(["a", "b:c/d"]);
      await store.delete("a");
      await store.delete("missing");
      expect(await store.get("a")).toBeUndefined();
      expect(await store.keys()).toEqual(["b:c/d"]);
    } finally {
      await store.close();
      await store.close();
    }
  });

  it.skipIf(skip)("exactly one of many concurrent compare-and-sets wins", async () => {
    const store = await make();
    try {
      await store.compareAndSet("k", undefined, "v0");
      for (let round = 1; round <= 3; round++) {
        const expected = await store.get("k");
        const outcomes = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            store.compareAndSet("k", expected, `v${round}-${i}`),
          ),
        );
        expect(outcomes.filter(Boolean)).toHaveLength(1);
        const winner = outcomes.indexOf(true);
        expect(await store.get("k")).toBe(`v${round}-${winner}`);
      }
      const fresh = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.compareAndSet("new", undefined, `n${i}`)),
      );
      expect(fresh.filter(Boolean)).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});

describe("file state store", () => {
  it("a crash between write and rename leaves the previous state readable", () => {
    const file = join(dir, "crash.json");
    const script = join(dir, "crash-child.mts");
    const storeModule = new URL("../../src/stores/file.ts", import.meta.url).pathname;
    writeFileSync(
      script,
      `import { createFileStateStore } from ${JSON.stringify(storeModule)};
const store = createFileStateStore(${JSON.stringify(file)}, {
  beforeRename: () => { if (process.env.CRASH) process.kill(process.pid, "SIGKILL"); },
});
const prev = await store.get("acct");
await store.compareAndSet("acct", prev, process.argv[2]);
console.log("saved");
`,
    );
    const run = (value: string, crash: boolean) =>
      spawnSync(process.execPath, ["--import", "tsx", script, value], {
        env: { ...process.env, CRASH: crash ? "1" : "" },
        encoding: "utf8",
      });
    const ok = run("state-1", false);
    expect(ok.stdout).toContain("saved");
    const crashed = run("state-2", true);
    expect(crashed.signal).toBe("SIGKILL");
    // The temp file was written (and fsynced) but never renamed.
    expect(readdirSync(dir).some((f) => f.startsWith("crash.json.") && f.endsWith(".tmp"))).toBe(
      true,
    );
    const text = readFileSync(file, "utf8");
    expect(JSON.parse(text).states.acct).toBe("state-1");
    // The store still works, and a later write replaces it.
    const again = run("state-3", false);
    expect(again.stdout).toContain("saved");
    expect(JSON.parse(readFileSync(file, "utf8")).states.acct).toBe("state-3");
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it("a lock left by a killed process does not block the next writer", async () => {
    const file = join(dir, "stale.json");
    writeFileSync(`${file}.lock`, "999999999");
    const store = createFileStateStore(file, { lockTimeoutMs: 2000 });
    expect(await store.compareAndSet("k", undefined, "v")).toBe(true);
  });

  it("a corrupt state file is a one-line StateError naming the file", async () => {
    const file = join(dir, "corrupt.json");
    writeFileSync(file, '{"deltasync":1,"states":{"a":');
    const store = createFileStateStore(file);
    const err = await store.get("a").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).toBe(`state file ${file} is corrupt: not JSON`);
    writeFileSync(file, '{"something":"else"}');
    await expect(store.get("a")).rejects.toThrow(/not a deltasync state file/);
  });
});

describe.skipIf(!pgUp)("PostgreSQL stores made per job", () => {
  it("create their tables once per pool (no DDL round trip per handle), again after a failed creation", async () => {
    const pg = await import("pg");
    const real = new pg.default.Pool({ connectionString: PG_URL, max: 2 });
    const statements: string[] = [];
    let failNext = false;
    const pool = {
      async query(text: string, values?: unknown[]) {
        statements.push(text);
        if (failNext && text.startsWith("CREATE")) {
          failNext = false;
          throw Object.assign(new Error("connection lost"), { code: "57P01" });
        }
        return real.query(text, values);
      },
      connect: () => real.connect(),
      end: () => real.end(),
    };
    const table = `ds_test_${process.pid}_once`;
    pgTables.push(table);
    try {
      failNext = true;
      await expect(createPostgresStateStore({ pool, table })).rejects.toThrow(
        /PostgreSQL state store/,
      );
      for (let i = 0; i < 3; i++) {
        const store = await createPostgresStateStore({ pool, table });
        expect(await store.compareAndSet(`k${i}`, undefined, `s${i}`)).toBe(true);
        expect(await store.get(`k${i}`)).toBe(`s${i}`);
      }
      expect(statements.filter((s) => s.startsWith("CREATE TABLE")).length).toBe(2);
    } finally {
      await real.end();
    }
  });
});
