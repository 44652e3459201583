/**
 * `deltasync worker` holding IMAP IDLE for an account registered with `--push '{"watch":true}'`,
 * against a real Dovecot: a message appended by another client reaches the PostgreSQL mirror
 * through the push connection (safety polls are an hour apart), and when the owning worker is
 * SIGKILLed the other worker takes the connection over and the next message arrives the same way.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresMirror } from "../../src/orchestrator/postgres-mirror.js";
import type { PgPool } from "../../src/stores/postgres.js";
import { mutator, rawMessage } from "../imap/harness.js";
import { DOVECOT_COMMANDS, type DovecotServer, startDovecot } from "../servers/dovecot.js";
import { serverAvailability } from "../servers/process.js";
import { createTestDatabase, pgReachable } from "./pg.js";

const up = await pgReachable();
if (!up && process.env.CI) throw new Error("PostgreSQL on 127.0.0.1:5432 is unreachable");
const dovecot = serverAvailability("Dovecot", DOVECOT_COMMANDS);
const root = new URL("../..", import.meta.url).pathname;

interface Proc {
  proc: ChildProcess;
  name: string;
  events(): Record<string, unknown>[];
}

function spawnWorker(name: string, url: string, env: Record<string, string>): Proc {
  const proc = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "worker",
      "--db",
      url,
      "--poll",
      "3600",
      "--tick",
      "0.2",
    ],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } },
  );
  let text = "";
  proc.stderr?.on("data", (d: Buffer) => {
    text += d.toString();
  });
  return {
    proc,
    name,
    events: () =>
      text
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

describe.skipIf(!up || dovecot.skip)("deltasync worker watches IMAP accounts (IDLE)", () => {
  let server: DovecotServer;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;
  const procs: Proc[] = [];
  beforeAll(async () => {
    server = await startDovecot();
    db = await createTestDatabase("ds_watch_cli");
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on("error", () => {});
  });
  afterAll(async () => {
    for (const p of procs) p.proc.kill("SIGKILL");
    await pool?.end();
    await db?.drop();
    await server?.stop();
  });

  it("a pushed change is synced by the owner; a SIGKILLed owner's account moves to the other worker", async () => {
    const user = "watcher";
    server.addUser(user);
    const added = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "accounts",
        "add",
        "u1",
        `imap://${user}@127.0.0.1:${server.port}/{scope}`,
        "INBOX",
        "--push",
        '{"watch":true}',
        "--db",
        db.url,
      ],
      { cwd: root, encoding: "utf8", timeout: 60_000 },
    );
    expect(added.stderr).toBe("");
    const env = { DELTASYNC_IMAP_PASSWORD__u1: server.password };
    procs.push(spawnWorker("A", db.url, env), spawnWorker("B", db.url, env));
    const watchStarts = (p: Proc) =>
      p.events().filter((e) => e.event === "watch" && e.phase === "started").length;
    await until(() => procs.some((p) => watchStarts(p) > 0));
    const owner = procs.find((p) => watchStarts(p) > 0) as Proc;
    const other = procs.find((p) => p !== owner) as Proc;
    expect(watchStarts(other)).toBe(0);

    const mirror = await createPostgresMirror({
      pool: pool as unknown as PgPool,
      source: "u1/INBOX",
    });
    const subjects = async () =>
      (await mirror.rows())
        .map((r) => (r.data as { envelope?: { subject?: string } }).envelope?.subject)
        .sort();
    const syncs = () =>
      procs.flatMap((p) => p.events()).filter((e) => e.event === "sync" && e.key === "u1/INBOX")
        .length;
    // The claim's catch-up sync first: what follows can only come through the push connection.
    await until(() => syncs() >= 1);
    const client = await mutator({ name: "dovecot", ...server }, user);
    try {
      await client.append("INBOX", rawMessage("first"));
      await until(async () => (await subjects()).includes("first"));

      const before = syncs();
      owner.proc.kill("SIGKILL");
      await until(() => watchStarts(other) > 0 && syncs() > before);
      await client.append("INBOX", rawMessage("second"));
      await until(async () => (await subjects()).includes("second"));
      expect(await subjects()).toEqual(["first", "second"]);
    } finally {
      await client.logout().catch(() => {});
    }
    other.proc.kill("SIGTERM");
    const code = await new Promise((r) => other.proc.on("exit", (c) => r(c)));
    expect(code).toBe(0);
  }, 120_000);
});
