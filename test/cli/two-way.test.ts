/**
 * `deltasync push` and `deltasync conflicts list|resolve`, spawned like a user runs them, over a
 * memory server kept in a snapshot file and a SQLite mirror edited through `mirror.edits`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadSnapshot, saveSnapshot } from "../../adapters/memory/cli.js";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { createSqliteMirror, type MirrorRow } from "../../src/orchestrator/sqlite-mirror.js";

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "deltasync-cli-two-way-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
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

/** A snapshot-backed memory source with one folder, mirrored by `deltasync sync`. */
function fixture(name: string) {
  const snapshot = join(dir, `${name}.json`);
  const mirrorFile = join(dir, `${name}.sqlite`);
  const source = `memory:demo?items=30&seed=7&file=${snapshot}&scope=folder:Inbox`;
  const key = "memory:demo/alice/folder:Inbox";
  const sync = cli(["sync", source, "--out", mirrorFile, "--state", join(dir, `${name}.state`)]);
  expect(sync.stderr).toBe("");
  expect(sync.code).toBe(0);
  const server = () => createMemoryServer({ from: loadSnapshot(snapshot) });
  /** Changes the server behind the CLI's back (as another client would). */
  const remote = (fn: (s: ReturnType<typeof server>) => void) => {
    const s = server();
    fn(s);
    saveSnapshot(s, snapshot);
  };
  const mirror = () => createSqliteMirror(mirrorFile, { source: key });
  return { source, key, mirrorFile, server, remote, mirror };
}

const subject = (s: ReturnType<typeof createMemoryServer>, key: string) =>
  s.item(key).fields.subject;

// Each of these two blocks is one story told in order (`shuffle: false`): a test goes on from the
// server and mirror the one before it left.
describe("deltasync push / conflicts", { shuffle: false }, () => {
  // One fixture for the whole story: every spawn costs seconds on a loaded machine.
  const f = fixture("story");

  it("push sends the mirror's local edits; a conflict pauses it (exit 6); list, resolve local, push resumes", () => {
    const m = f.mirror();
    const [a, b, c] = m.rows() as MirrorRow[];
    if (!a || !b || !c) throw new Error("fixture has too few rows");
    m.edits.update(a.id, { fields: { subject: "edited locally" } });
    m.edits.remove(b.id);
    m.close();
    const first = cli(["--json", "push", f.source, "--out", f.mirrorFile]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(ndjson(first.stdout)).toEqual([
      { event: "push", pair: f.key, pushed: 2, status: "done", resolved: [] },
    ]);
    expect(subject(f.server(), a.sourcekey)).toBe("edited locally");
    expect(
      f
        .server()
        .allItems()
        .some((i) => i.sourcekey === b.sourcekey),
    ).toBe(false);

    // Both sides change `a`; `c`'s edit waits behind the conflict.
    const m2 = f.mirror();
    m2.edits.update(a.id, { fields: { subject: "mine" } });
    m2.edits.update(c.id, { fields: { subject: "behind the conflict" } });
    m2.close();
    f.remote((s) => s.updateItem(a.sourcekey, { subject: "theirs" }));
    const paused = cli(["push", f.source, "--out", f.mirrorFile]);
    expect(paused.code).toBe(6);
    expect(paused.stdout).toBe(`${f.key}: pushed 0 changes; paused\n`);
    expect(paused.stderr).toContain(
      `conflict ${f.key}#3 pauses ${f.key}: ${f.key}#3  edit  ${a.sourcekey}  local update on`,
    );
    expect(paused.stderr).toContain(
      `deltasync conflicts resolve '${f.key}#3' local|remote --mirror ${f.mirrorFile}`,
    );
    expect(subject(f.server(), c.sourcekey)).not.toBe("behind the conflict");

    const list = cli(["--json", "conflicts", "list", "--mirror", f.mirrorFile]);
    expect(list.code).toBe(0);
    expect(ndjson(list.stdout)).toEqual([
      expect.objectContaining({
        event: "conflict",
        id: `${f.key}#3`,
        pair: f.key,
        kind: "edit",
        status: "open",
        sourcekey: a.sourcekey,
        local: "update",
      }),
    ]);

    const resolved = cli(["conflicts", "resolve", `${f.key}#3`, "local", "--mirror", f.mirrorFile]);
    expect(resolved.stderr).toBe("");
    expect(resolved.code).toBe(0);
    const resumed = cli(["push", f.source, "--out", f.mirrorFile]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toBe(`${f.key}: pushed 2 changes\n`);
    expect(subject(f.server(), a.sourcekey)).toBe("mine");
    expect(subject(f.server(), c.sourcekey)).toBe("behind the conflict");
  });

  it("resolve remote takes the server's version; --policy server-wins resolves without pausing", () => {
    const m = f.mirror();
    const [a, b] = m.rows() as MirrorRow[];
    if (!a || !b) throw new Error("fixture has too few rows");
    m.edits.update(a.id, { fields: { subject: "mine again" } });
    m.edits.update(b.id, { fields: { subject: "mine too" } });
    m.close();
    f.remote((s) => {
      s.updateItem(a.sourcekey, { subject: "theirs again" });
      s.updateItem(b.sourcekey, { subject: "theirs too" });
    });
    const paused = cli(["push", f.source, "--out", f.mirrorFile]);
    expect(paused.code).toBe(6);
    const id = `${f.key}#5`;
    expect(cli(["conflicts", "resolve", id, "remote", "--mirror", f.mirrorFile]).code).toBe(0);
    const twice = cli(["conflicts", "resolve", id, "local", "--mirror", f.mirrorFile]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toBe(
      `deltasync: bad argument: conflicts resolve: ${id} is already resolved (remote)\n`,
    );
    // The app's resolution of `a` is carried out, then `b` meets the policy.
    const r = cli(["--json", "push", f.source, "--out", f.mirrorFile, "--policy", "server-wins"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(ndjson(r.stdout)).toEqual([
      {
        event: "push",
        pair: f.key,
        pushed: 0,
        status: "done",
        resolved: [{ id: `${f.key}#6`, kind: "edit", resolution: "remote" }],
      },
    ]);
    const s = f.server();
    expect(subject(s, a.sourcekey)).toBe("theirs again");
    expect(subject(s, b.sourcekey)).toBe("theirs too");
    const after = f.mirror();
    expect(after.get(a.sourcekey)?.data).toMatchObject({ fields: { subject: "theirs again" } });
    expect(after.get(b.sourcekey)?.data).toMatchObject({ fields: { subject: "theirs too" } });
    after.close();

    const all = cli(["--json", "conflicts", "list", "--all", "--mirror", f.mirrorFile]);
    expect(ndjson(all.stdout).map((e) => [e.id, e.status, e.resolution])).toEqual([
      [`${f.key}#3`, "resolved", "local"],
      [id, "resolved", "remote"],
      [`${f.key}#6`, "resolved", "remote"],
    ]);
  });

  it("bad input: one-line errors and exit codes", () => {
    const cases: [string[], number, string][] = [
      [
        ["push", f.source],
        2,
        "deltasync: bad argument: push needs --out <mirror.sqlite>: the SQLite mirror holding the local edits (the file `deltasync sync --out` writes)\n",
      ],
      [
        ["push", f.source.replace("folder:Inbox", "hierarchy"), "--out", f.mirrorFile],
        2,
        "deltasync: error: push: memory:demo/alice/hierarchy can't be written (push needs one folder, calendar or address book of an adapter with a write surface: memory, CalDAV/CardDAV, Google Calendar)\n",
      ],
      [
        ["conflicts", "resolve", `${f.key}#9`, "local", "--mirror", f.mirrorFile],
        2,
        `deltasync: bad argument: conflicts resolve: no conflict "${f.key}#9" in ${f.mirrorFile} (see deltasync conflicts list)\n`,
      ],
    ];
    for (const [args, code, stderr] of cases) {
      const r = cli(args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code, stderr });
    }
  });
});

describe("the mirror's mass-change guard from the CLI", { shuffle: false }, () => {
  const f = fixture("mass");
  const state = join(dir, "mass.state");
  const inbox = () => {
    const m = f.mirror();
    const rows = m.rows();
    m.close();
    return rows;
  };
  const serverKeys = () => {
    const folder = inbox()[0]?.parentKey;
    return f
      .server()
      .allItems()
      .filter((i) => i.parentKey === folder)
      .map((i) => i.sourcekey)
      .sort();
  };

  it("sync pauses a mass delete (exit 6, nothing deleted) until rerun with --confirm-mass-change", () => {
    const folder = inbox()[0]?.parentKey as string;
    f.remote((s) => {
      for (let i = 0; i < 30; i++) s.folder(folder).createItem({ subject: `remote ${i}` });
    });
    expect(cli(["sync", f.source, "--out", f.mirrorFile, "--state", state]).code).toBe(0);
    const rows = inbox();
    expect(rows.length).toBeGreaterThan(30);
    f.remote((s) => {
      for (const r of rows.slice(0, 25)) s.deleteItem(r.sourcekey);
    });
    const paused = cli(["sync", f.source, "--out", f.mirrorFile, "--state", state]);
    expect(paused.code).toBe(6);
    expect(paused.stderr).toBe(
      `deltasync: paused: pull of ${f.key} would delete 25 of ${rows.length} objects (the server's deletes would remove them from the mirror); nothing was deleted. If that is intended, run the same \`deltasync sync\` again with --confirm-mass-change\n`,
    );
    expect(inbox().length).toBe(rows.length);
    // Paused means paused: the next plain run refuses again.
    expect(cli(["sync", f.source, "--out", f.mirrorFile, "--state", state]).code).toBe(6);

    const confirmed = cli([
      "sync",
      f.source,
      "--out",
      f.mirrorFile,
      "--state",
      state,
      "--confirm-mass-change",
    ]);
    expect(confirmed.stderr).toBe("");
    expect(confirmed.code).toBe(0);
    expect(inbox().length).toBe(rows.length - 25);
    expect(
      inbox()
        .map((r) => r.sourcekey)
        .sort(),
    ).toEqual(serverKeys());
  });

  it("push pauses local mass deletes the same way; the server keeps them until confirmed", () => {
    const folder = inbox()[0]?.parentKey as string;
    f.remote((s) => {
      for (let i = 0; i < 25; i++) s.folder(folder).createItem({ subject: `more ${i}` });
    });
    expect(cli(["sync", f.source, "--out", f.mirrorFile, "--state", state]).code).toBe(0);
    const m = f.mirror();
    const rows = m.rows();
    for (const r of rows.slice(0, 28)) m.edits.remove(r.id);
    m.close();
    const paused = cli(["push", f.source, "--out", f.mirrorFile]);
    expect(paused.code).toBe(6);
    expect(paused.stderr).toBe(
      `deltasync: paused: push of ${f.key} would delete 28 of ${rows.length} objects (the mirror's pending deletes would remove them from the server); nothing was deleted. If that is intended, run the same \`deltasync push\` again with --confirm-mass-change\n`,
    );
    expect(serverKeys()).toHaveLength(rows.length);
    const confirmed = cli(["push", f.source, "--out", f.mirrorFile, "--confirm-mass-change"]);
    expect(confirmed.stderr).toBe("");
    expect(confirmed.code).toBe(0);
    expect(confirmed.stdout).toBe(`${f.key}: pushed 28 changes\n`);
    expect(serverKeys()).toEqual(
      rows
        .slice(28)
        .map((r) => r.sourcekey)
        .sort(),
    );
  });
});
