/**
 * A newcomer's first runs of the installed `deltasync` command: bad input of every kind must
 * give one line on stderr naming what was wrong and the exit code docs/cli.md's table gives, and
 * every row of that table is exercised here. Also: the credential flags reach the connection,
 * `--out -` keeps stdout to data, and Ctrl-C / SIGTERM stop at once with the state saved.
 * Runs the packed package (needs `npm run build`; CI builds before testing).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installedProject, isBuilt, type Project, repoRoot } from "../package/installed.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let project: Project;
let server: Server;
let base: string;
/** The Authorization header of every request the local server saw. */
const seen: (string | undefined)[] = [];

function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ["node_modules/deltasync/dist/cli/main.js", ...args], {
    cwd: project.dir,
    env: { PATH: process.env.PATH ?? "", HOME: project.dir, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function finish(child: ChildProcess): Promise<Run> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr?.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

const cli = (args: string[], env: Record<string, string> = {}) => finish(start(args, env));

/** A DAV-ish server: 401 without the right credentials, then 404 / 400 by path. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  seen.push(req.headers.authorization);
  const ok = [
    `Basic ${Buffer.from("alice:s3cret-pw").toString("base64")}`,
    "Bearer tok-123",
  ].includes(req.headers.authorization ?? "");
  if (!ok) {
    res.writeHead(401, { "www-authenticate": 'Basic realm="x"' }).end("no");
    return;
  }
  if (req.url?.startsWith("/html")) {
    res
      .writeHead(400, { "content-type": "text/html" })
      .end(
        "<!DOCTYPE html>\n<html><head><title>400 Bad Request</title></head>\n<body><h1>nginx</h1>\n</body></html>",
      );
    return;
  }
  res.writeHead(404).end("not here");
}

beforeAll(async () => {
  if (!isBuilt) return;
  project = installedProject({ extra: ["better-sqlite3"] });
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  mkdirSync(join(project.dir, "adir"));
  writeFileSync(join(project.dir, "afile"), "x");
  writeFileSync(join(project.dir, "corrupt.json"), "{not json");
  writeFileSync(join(project.dir, "corrupt.sqlite"), "this is not a database, just text");
});
afterAll(() => server?.close());

/** [what a newcomer typed, extra env, exit code, stderr] — stderr is always exactly one line. */
const BAD_INPUT: [string, string[], Record<string, string>, number, RegExp][] = [
  ["no source", ["sync"], {}, 2, /^deltasync: bad argument: missing required argument 'source'$/],
  [
    "unknown option",
    ["sync", "memory:demo", "--bogus"],
    {},
    2,
    /^deltasync: bad argument: unknown option '--bogus'$/,
  ],
  [
    "not a URL",
    ["sync", "my inbox"],
    {},
    2,
    /^deltasync: bad argument: not a source URL: "my inbox"/,
  ],
  [
    "unknown scheme",
    ["sync", "nope:thing"],
    {},
    2,
    /^deltasync: bad argument: unknown source scheme "nope:"/,
  ],
  [
    "parameter typo",
    ["sync", "memory:demo?itmes=5"],
    {},
    2,
    /^deltasync: bad argument: memory source: unknown parameter "itmes" \(known: items,/,
  ],
  [
    "bad parameter value",
    ["sync", "memory:demo?items=lots"],
    {},
    2,
    /^deltasync: bad argument: memory source: items must be an integer >= 0, got "lots"$/,
  ],
  [
    "a flag memory does not take",
    ["sync", "memory:demo?items=5", "--password", "pw"],
    {},
    2,
    /^deltasync: bad argument: the memory: source takes no --password$/,
  ],
  [
    "--password for google",
    ["sync", "google:gmail", "--password", "pw"],
    {},
    2,
    /^deltasync: bad argument: the google: source takes no --password \(use --token\)$/,
  ],
  [
    "missing credentials",
    ["sync", "google:gmail"],
    {},
    2,
    /^deltasync: bad argument: google: no credentials: set DELTASYNC_GOOGLE_TOKEN \(or --token\)/,
  ],
  [
    "password in the URL",
    ["sync", "caldav:http://alice:pw@127.0.0.1:1/"],
    {},
    2,
    /^deltasync: bad argument: caldav: put the password in DELTASYNC_DAV_PASSWORD, not in the URL$/,
  ],
  [
    "state path is a directory",
    ["sync", "memory:demo?items=5", "--state", "adir"],
    {},
    2,
    /^deltasync: bad argument: state file adir is a directory$/,
  ],
  [
    "state path under a file",
    ["sync", "memory:demo?items=5", "--state", "afile/s.json"],
    {},
    2,
    /^deltasync: bad argument: state file afile\/s\.json: a parent is not a directory$/,
  ],
  [
    "mirror path is a directory",
    ["sync", "memory:demo?items=5", "--out", "adir"],
    {},
    2,
    /^deltasync: bad argument: SQLite file adir is a directory$/,
  ],
  [
    "corrupt JSON state",
    ["sync", "memory:demo?items=5", "--state", "corrupt.json"],
    {},
    5,
    /^deltasync: bad state: state file corrupt\.json is corrupt: not JSON$/,
  ],
  [
    "corrupt SQLite state",
    ["sync", "memory:demo?items=5", "--state", "corrupt.sqlite"],
    {},
    5,
    /^deltasync: bad state: state file corrupt\.sqlite is not a SQLite database \(file is not a database\)$/,
  ],
];

describe.skipIf(!isBuilt)("a newcomer's first runs (after npm run build)", () => {
  it.each(BAD_INPUT)(
    "%s → exit code and one line naming the problem",
    async (_what, args, env, code, message) => {
      const r = await cli(args, env);
      expect(r.stderr.trimEnd().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(message);
      expect(r.code).toBe(code);
      expect(r.stdout).toBe("");
    },
  );

  it("credentials refused by the server → 3, with the flag's value never printed", async () => {
    const r = await cli(["sync", `caldav:${base}/`, "--password", "wrong-pw"], {
      DELTASYNC_DAV_USER: "alice",
    });
    expect(r.stderr).toMatch(/^deltasync: bad credentials: .*HTTP 401/);
    expect(r.code).toBe(3);
    expect(r.stderr).not.toContain("wrong-pw");
  });

  it("--password reaches the DAV connection as Basic auth (404 after it, not 401)", async () => {
    seen.length = 0;
    const r = await cli(["sync", `caldav:${base}/`, "--password", "s3cret-pw"], {
      DELTASYNC_DAV_USER: "alice",
    });
    expect(seen[0]).toBe(`Basic ${Buffer.from("alice:s3cret-pw").toString("base64")}`);
    expect(r.stderr).not.toMatch(/bad credentials/); // past the 401: our server has no DAV
    expect(r.code).not.toBe(3);
  });

  it("--token reaches the DAV connection as a bearer token", async () => {
    seen.length = 0;
    const r = await cli(["sync", `carddav:${base}/`, "--token", "tok-123"]);
    expect(seen[0]).toBe("Bearer tok-123");
    expect(r.code).not.toBe(3);
    expect(r.stderr).not.toContain("tok-123");
  });

  it("nothing listening → 4 (unreachable, after the client's retries)", async () => {
    const r = await cli(["sync", "caldav:http://127.0.0.1:1/"]);
    expect(r.stderr).toMatch(
      /^deltasync: unreachable: PROPFIND http:\/\/127\.0\.0\.1:1\/: connection refused/,
    );
    expect(r.code).toBe(4);
  });

  it("an HTML error page → 1, quoted by its title in one line", async () => {
    const r = await cli(["sync", `caldav:${base}/html/`, "--token", "tok-123"]);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^deltasync: error: .*HTTP 400 \(HTML page: 400 Bad Request\)$/m);
    expect(r.stderr).not.toMatch(/<html|nginx/i);
    expect(r.code).toBe(1);
  });

  it("--version, and a good run → 0", async () => {
    const v = await cli(["--version"]);
    expect(v.stdout.trim()).toBe(
      JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version,
    );
    expect(v.code).toBe(0);
    const r = await cli([
      "sync",
      "memory:demo?items=20",
      "--state",
      "ok.sqlite",
      "--out",
      "mirror.sqlite",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/full sync: 20 updated/);
  });

  it("--out - without --json: stdout carries NDJSON only, the summary goes to stderr", async () => {
    const r = await cli(["sync", "memory:demo?items=30", "--out", "-"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(30);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ event: "change" });
    expect(r.stderr).toMatch(/full sync: 30 updated/);
  });

  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    it(`${signal} during a long sync stops it at once: exit ${code}, the state saved, the next run resumes`, async () => {
      const state = `${signal}.json`;
      const source = "memory:demo?items=200000";
      const child = start(["--json", "sync", source, "--state", state, "--batch-size", "100"]);
      const done = finish(child);
      // Wait for the first saved batch, then interrupt.
      while (!existsSync(join(project.dir, state))) await new Promise((r) => setTimeout(r, 20));
      child.kill(signal);
      const r = await done;
      expect(r.code).toBe(code);
      expect(r.stderr).toBe("deltasync: interrupted\n");
      const saved = JSON.parse(readFileSync(join(project.dir, state), "utf8"));
      expect(Object.keys(saved.states)).toEqual(["memory:demo/alice/items"]);
      // The next run resumes the full sync where it stopped instead of starting over.
      const next = await cli(["--json", "sync", source, "--state", state, "--batch-size", "5000"]);
      expect(next.code).toBe(0);
      const result = JSON.parse(next.stdout.trim().split("\n").at(-1) as string);
      expect(result.updated).toBeLessThan(200000);
      expect(result.updated).toBeGreaterThan(0);
    });
  }

  it("Ctrl-C while connecting to a server that never answers: exit 130 without waiting for it", async () => {
    const { createServer: createTcpServer } = await import("node:net");
    let connected!: () => void;
    const accepted = new Promise<void>((r) => {
      connected = r;
    });
    const silent = createTcpServer(() => connected()); // accepts, never sends a greeting
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as AddressInfo).port;
    try {
      const child = start(["sync", `imap://alice@127.0.0.1:${port}/INBOX`], {
        DELTASYNC_IMAP_PASSWORD: "pw",
      });
      const done = finish(child);
      await accepted;
      child.kill("SIGINT");
      const r = await done;
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/^deltasync: interrupted/m);
    } finally {
      silent.close();
    }
  });

  it("exercises every exit code of docs/cli.md's table", () => {
    const doc = readFileSync(join(repoRoot, "docs/cli.md"), "utf8");
    const documented = [...doc.matchAll(/^\|\s*(\d+)\s*\|/gm)]
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    // Codes exercised above: the table, 3 (refused), 4 (not found), 1 (HTML 400), 0, 130, 143;
    // 6 (a push paused by a conflict) in test/cli/two-way.test.ts.
    const exercised = [
      ...new Set([...BAD_INPUT.map((row) => row[3]), 3, 4, 1, 0, 6, 130, 143]),
    ].sort((a, b) => a - b);
    expect(documented).toEqual(exercised);
  });
});
