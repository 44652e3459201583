import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { loadSnapshot } from "../../adapters/memory/cli.js";
import { createMemoryServer, type MemoryData } from "../../adapters/memory/index.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "deltasync-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    input: "",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ndjson(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function serverTruth(snapshotFile: string) {
  const server = createMemoryServer({ from: loadSnapshot(snapshotFile) });
  const truth = new Map<string, { parentKey?: string; data: MemoryData }>();
  await server.store("alice").items.sync({
    update: (o) => void truth.set(o.sourcekey, { parentKey: o.parentKey, data: o.data }),
    delete: (o) => void truth.delete(o.sourcekey),
  });
  return sorted(truth);
}

function sorted<V>(map: Map<string, V>): Record<string, V> {
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function mirrorContent(dbFile: string) {
  const db = new Database(dbFile, { readonly: true });
  try {
    const m = createSqliteMirror(db, { source: "memory:demo/alice/items" });
    return sorted(
      new Map(
        m.rows().map((r) => [r.sourcekey, { parentKey: r.parentKey ?? undefined, data: r.data }]),
      ),
    );
  } finally {
    db.close();
  }
}

describe("deltasync CLI", () => {
  it("demo --duration 3 --json mirrors the server; a second run is incremental", async () => {
    const demoDir = join(dir, "demo");
    const first = cli([
      "--json",
      "demo",
      "--duration",
      "3",
      "--dir",
      demoDir,
      "--items",
      "1500",
      "--rate",
      "20",
    ]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const events = ndjson(first.stdout);
    const syncs = events.filter((e) => e.event === "sync");
    expect(
      syncs.find((e) => e.phase === "initial" && e.key === "memory:demo/alice/items"),
    ).toMatchObject({
      fullSync: true,
      updated: 1500,
    });
    expect(events.filter((e) => e.event === "change").length).toBeGreaterThan(0);
    // Two-way: a local edit pushed, a remote edit pulled, a conflict paused and resolved.
    expect(events.filter((e) => e.event === "two-way").map((e) => e.step)).toEqual([
      "local-edit",
      "remote-edit",
      "conflict",
      "resolved",
    ]);
    expect(events.at(-1)).toMatchObject({ event: "demo", phase: "end", consistent: true });

    const truth = await serverTruth(join(demoDir, "server.json"));
    expect(mirrorContent(join(demoDir, "demo.sqlite"))).toEqual(truth);

    const second = cli(["--json", "demo", "--duration", "1", "--dir", demoDir, "--rate", "20"]);
    expect(second.code).toBe(0);
    const initial = ndjson(second.stdout).find(
      (e) => e.event === "sync" && e.key === "memory:demo/alice/items",
    );
    expect(initial).toMatchObject({ fullSync: false, phase: "initial" });
    expect(mirrorContent(join(demoDir, "demo.sqlite"))).toEqual(
      await serverTruth(join(demoDir, "server.json")),
    );
  });

  it("sync <source> --state --out: full, then incremental, into a SQLite mirror", () => {
    const state = join(dir, "s.json");
    const out = join(dir, "m.sqlite");
    const a = cli([
      "--json",
      "sync",
      "memory:demo?items=300",
      "--state",
      state,
      "--out",
      out,
      "--batch-size",
      "100",
    ]);
    expect(a.code).toBe(0);
    expect(ndjson(a.stdout)[0]).toMatchObject({
      event: "sync",
      fullSync: true,
      updated: 300,
      batches: 3,
    });
    const b = cli(["--json", "sync", "memory:demo?items=300", "--state", state, "--out", out]);
    expect(ndjson(b.stdout)[0]).toMatchObject({ event: "sync", fullSync: false, updated: 0 });
    const db = new Database(out, { readonly: true });
    expect(createSqliteMirror(db, { source: "memory:demo/alice/items" }).count()).toBe(300);
    db.close();
  });

  it("watch <source> --duration: an initial full round, then incremental rounds with the changes", () => {
    const state = join(dir, "w.sqlite");
    const snap = join(dir, "w.json");
    const r = cli([
      "--json",
      "watch",
      `memory:demo?items=50&mutate=10&file=${snap}`,
      "--state",
      state,
      "--duration",
      "2.5",
      "--poll",
      "1",
    ]);
    expect(r.code).toBe(0);
    const rounds = ndjson(r.stdout).filter((e) => e.event === "sync");
    expect(rounds[0]).toMatchObject({ trigger: "initial", fullSync: true, updated: 50 });
    const later = rounds.slice(1);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((e) => e.fullSync === false)).toBe(true);
    expect(
      later.reduce((n, e) => n + Number(e.updated) + Number(e.deleted) + Number(e.read), 0),
    ).toBeGreaterThan(0);
  });

  it("--out - prints NDJSON changes", () => {
    const r = cli(["sync", "memory:demo?items=20&scope=folder:Inbox", "--out", "-"]);
    expect(r.code).toBe(0);
    const changes = ndjson(
      r.stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .join("\n"),
    );
    expect(changes.length).toBeGreaterThan(0);
    expect(changes[0]).toMatchObject({ event: "change", op: "update", type: "item" });
  });

  it("one-line errors and exit codes for bad arguments and corrupt state", () => {
    const bad = cli(["sync", "nope:thing"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toMatch(/^deltasync: bad argument: unknown source scheme "nope:"/);
    const flag = cli(["sync", "--bogus"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim().split("\n")).toHaveLength(1);
    const corrupt = join(dir, "corrupt.json");
    writeFileSync(corrupt, "{not json");
    const c = cli(["sync", "memory:demo?items=5", "--state", corrupt]);
    expect(c.code).toBe(5);
    expect(c.stderr.trim()).toBe(
      `deltasync: bad state: state file ${corrupt} is corrupt: not JSON`,
    );
    expect(c.stderr).not.toMatch(/\bat /);
    const verbose = cli(["--verbose", "sync", "memory:demo?items=5", "--state", corrupt]);
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });

  it("never echoes a credential given by flag or env", () => {
    const secret = "hunter2-Sup3rSecret";
    const runs = [
      cli(["--verbose", "sync", `imap://alice:${secret}@127.0.0.1:1/INBOX`]),
      cli(["--verbose", "sync", "memory:nosuch", "--password", secret]),
      cli(["--verbose", "--json", "sync", "memory:demo?items=5", "--token", secret, "--out", "-"], {
        DELTASYNC_IMAP_PASSWORD: secret,
      }),
    ];
    for (const r of runs) {
      expect(r.stdout + r.stderr).not.toContain(secret);
      expect(r.stdout + r.stderr).not.toContain("Sup3r");
    }
    expect(runs[0]?.code).not.toBe(0);
    expect(runs[1]?.code).toBe(2);
  });
});

describe("deltasync demo, interactive stop", () => {
  it("Ctrl-C (SIGINT) stops the watch, catches up and exits 130 with the mirror in sync", async () => {
    const { spawn } = await import("node:child_process");
    const demoDir = join(dir, "sigint");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "--json",
        "demo",
        "--dir",
        demoDir,
        "--items",
        "400",
        "--duration",
        "120",
        "--rate",
        "20",
      ],
      { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await new Promise<void>((resolve) => {
      child.stdout.on("data", (b: Buffer) => {
        stdout += b.toString();
        // Stop once the generator's changes are flowing through the watch.
        if (stdout.includes('"event":"change"')) resolve();
      });
    });
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toBe("deltasync: interrupted\n");
    const events = ndjson(stdout);
    expect(events.at(-1)).toMatchObject({ event: "demo", phase: "end", consistent: true });
    expect(mirrorContent(join(demoDir, "demo.sqlite"))).toEqual(
      await serverTruth(join(demoDir, "server.json")),
    );
  });
});
