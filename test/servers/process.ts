/**
 * Shared plumbing for real-server fixtures: free ports, throwaway dirs, start, wait, stop by pid.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `deltasync-${prefix}-`));
}

/** A temp dir on tmpfs where there is one: servers that fsync or commit per write run faster. */
export function shmTempDir(prefix: string): string {
  return existsSync("/dev/shm")
    ? mkdtempSync(join("/dev/shm", `deltasync-${prefix}-`))
    : tempDir(prefix);
}

/** True when `command` is on the PATH (or is an existing absolute path). */
export function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${JSON.stringify(command)}`]).status === 0;
}

/**
 * Decides what a test file does when its server is missing: skip with a reason outside CI,
 * fail in CI (where `.ci/run` must have installed it).
 */
export function serverAvailability(
  name: string,
  commands: string[],
): { skip: boolean; reason: string } {
  const missing = commands.filter((c) => !hasCommand(c));
  if (missing.length === 0) return { skip: false, reason: "" };
  const reason = `${name} not installed (missing ${missing.join(", ")}); run .ci/install-*.sh`;
  if (process.env.CI) throw new Error(`${reason}: CI must have it`);
  console.warn(`skipping ${name} tests: ${reason}`);
  return { skip: true, reason };
}

export async function waitForPort(
  port: number,
  timeoutMs = 15_000,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null)
      throw new Error(`server exited with code ${child.exitCode} before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => {
        s.destroy();
        resolve(false);
      });
      s.connect(port, "127.0.0.1");
    });
    if (open) return;
    if (Date.now() > deadline)
      throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningServer {
  child: ChildProcess;
  dir: string;
  /** Output so far, for error messages. */
  output(): string;
  /** Stops the server by pid and waits for it to exit (SIGKILL after `graceMs`); removes `dir`. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a server process in the foreground of a child, capturing its output. */
export function startProcess(
  command: string,
  args: string[],
  dir: string,
  env?: NodeJS.ProcessEnv,
): RunningServer {
  const child = spawn(command, args, {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-8000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return {
    child,
    dir,
    output: () => out,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once("exit", () => r()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until an HTTP server answers below 500 on `url`; stops it and throws if it exits or times out. */
export async function waitForHttp(
  server: RunningServer,
  url: string,
  name: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.child.exitCode !== null) {
      const output = server.output();
      await server.stop(); // removes the throwaway dir
      throw new Error(`${name} exited (${server.child.exitCode}): ${output}`);
    }
    try {
      const res = await fetch(`${url}/`, { redirect: "manual" });
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${name} did not answer on ${url}: ${server.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
