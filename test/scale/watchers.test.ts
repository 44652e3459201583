/**
 * Push connections in a fleet (`createWorker({ watch })`): one owner per watched account across
 * workers, taken over by another worker when the owner's PostgreSQL session dies, dropped when the
 * account stops asking, handed back when the watch fails; `notify` and the catch-up on claim
 * queue syncs that any worker runs.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccountRegistry } from "../../src/scale/accounts.js";
import { createWorker, type Worker } from "../../src/scale/worker.js";
import type { PgPool } from "../../src/stores/postgres.js";
import { createTestDatabase, pgReachable } from "./pg.js";

const up = await pgReachable();
if (!up && process.env.CI) throw new Error("PostgreSQL on 127.0.0.1:5432 is unreachable");

async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 25));
}

describe.skipIf(!up)("worker watches (long-lived push connections)", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const pools: pg.Pool[] = [];
  const poolFor = (name: string) => {
    const url = new URL(db.url);
    url.searchParams.set("application_name", `watch-${name}`);
    const p = new pg.Pool({ connectionString: url.toString(), max: 6 });
    p.on("error", () => {});
    pools.push(p);
    return p;
  };
  const workers: Worker[] = [];
  beforeAll(async () => {
    db = await createTestDatabase("ds_watch");
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(pools.map((p) => p.end()));
    await db?.drop();
  });

  it("one owner per account; a dead owner's accounts move; unwatched accounts are let go; a failing watch is handed back", async () => {
    const admin = poolFor("admin");
    const accounts = await createAccountRegistry({ pool: admin as unknown as PgPool });
    for (const id of ["w1", "w2", "w3"])
      await accounts.add({ id, adapter: "imap", scopes: ["INBOX", "Sent"], push: { watch: true } });
    await accounts.add({ id: "plain", adapter: "imap", scopes: ["INBOX"] });
    await accounts.add({ id: "off", adapter: "imap", scopes: ["INBOX"], push: { watch: false } });
    // Settings the worker can't read as a watch request leave that account alone, not the others.
    await accounts.add({
      id: "odd",
      adapter: "imap",
      scopes: ["INBOX"],
      push: { watch: "sometimes" },
    });

    /** Current owner of each account, every claim in order, and any second owner seen. */
    const owner = new Map<string, string>();
    const claims: string[] = [];
    const doubles: string[] = [];
    const notifies = new Map<string, (scope: string) => Promise<void>>();
    const synced: string[] = [];
    const errors: unknown[] = [];
    let failNext = "";
    const node = async (name: string, maxWatches: number) => {
      const worker = await createWorker({
        pool: poolFor(name) as unknown as PgPool,
        pollIntervalMs: 3_600_000,
        tickMs: 40,
        debounceMs: 10,
        maxWatches,
        backoff: { minMs: 300 },
        onError: (error, during) => {
          if (during === "watch") errors.push(error);
        },
        getCredentials: () => ({ password: "p" }),
        sync: async ({ key }) => void synced.push(key),
        watch: async (account, { signal, notify }) => {
          if (owner.has(account.id))
            doubles.push(`${account.id}: ${owner.get(account.id)} and ${name}`);
          owner.set(account.id, name);
          claims.push(`${account.id}@${name}`);
          notifies.set(account.id, notify);
          try {
            if (failNext === account.id) {
              failNext = "";
              throw new Error("IDLE refused");
            }
            await new Promise((_, reject) =>
              signal.addEventListener("abort", reject, { once: true }),
            );
          } finally {
            if (owner.get(account.id) === name) owner.delete(account.id);
          }
        },
      });
      workers.push(worker);
      return worker;
    };
    const a = await node("A", 2);
    const b = await node("B", 100);

    // Every account that asks is watched, once; the others never.
    await until(() => owner.size === 3);
    expect([...owner.keys()].sort()).toEqual(["w1", "w2", "w3"]);
    expect(a.watching).toBeLessThanOrEqual(2);
    expect(a.watching + b.watching).toBe(3);
    // Claiming an account queues a catch-up sync of each of its keys.
    await until(() => ["w1", "w2", "w3"].every((id) => synced.includes(`${id}/Sent`)));
    // A change the connection sees becomes a sync of that scope (any worker runs it).
    const before = synced.length;
    await notifies.get("w2")?.("INBOX");
    await until(() => synced.slice(before).includes("w2/INBOX"));
    for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 40));
    expect(doubles).toEqual([]);

    // A's PostgreSQL connections die (as when its process is SIGKILLed): its locks go with them,
    // and B takes its accounts over.
    const ofA = [...owner].filter(([, n]) => n === "A").map(([id]) => id);
    expect(ofA.length).toBeGreaterThan(0);
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'watch-A'",
    );
    await until(() => ofA.every((id) => claims.includes(`${id}@B`)));
    await until(() => b.watching === 3);
    expect(a.watching).toBe(0);

    // An account that stops asking is let go.
    await accounts.add({ id: "w3", adapter: "imap", scopes: ["INBOX"], push: { watch: false } });
    await until(() => !owner.has("w3") && b.watching === 2);

    // A failing watch is reported, its lock released, and it is claimed again after a rest.
    const claimsOfW1 = () => claims.filter((c) => c.startsWith("w1@")).length;
    const n = claimsOfW1();
    failNext = "w1";
    await accounts.add({ id: "w1", adapter: "imap", scopes: ["INBOX"], push: { watch: false } });
    await until(() => !owner.has("w1"));
    await accounts.add({ id: "w1", adapter: "imap", scopes: ["INBOX"], push: { watch: true } });
    await until(() => errors.some((e) => /watch of w1 failed: .*IDLE refused/.test(String(e))));
    await until(() => claimsOfW1() >= n + 2 && owner.get("w1") === "B");
    expect(doubles).toEqual([]);

    await b.stop();
    expect(owner.size).toBe(0);
    expect(b.watching).toBe(0);
  }, 60_000);
});
