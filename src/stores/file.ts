import { closeSync, fsyncSync, openSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { ArgumentError, errorMessage, StateError, TransientError } from "../core/errors.js";
import { sleep } from "../core/sleep.js";
import { checkWritableFile } from "./paths.js";
import type { StateStore } from "./types.js";

export interface FileStateStoreOptions {
  /** How long to wait for another process's lock before failing with a `TransientError` (ms). */
  lockTimeoutMs?: number;
  /** Test hook: runs after the temp file is written and fsynced, before the rename. */
  beforeRename?: (tempPath: string) => void | Promise<void>;
}

interface FileShape {
  deltasync: 1;
  states: Record<string, string>;
}

/**
 * A state store in one JSON file. Every write goes to a temp file that is fsynced and then
 * renamed over the old one, so a crash at any point leaves either the old or the new file, never a
 * torn one. Writers in several processes are serialised with a `<file>.lock` file. Throws
 * `ArgumentError` naming the path at once when the file or its directory is not writable.
 * @example
 * const store = createFileStateStore("./deltasync-state.json");
 */
export function createFileStateStore(
  path: string,
  options: FileStateStoreOptions = {},
): StateStore {
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  checkWritableFile(path, "state file");
  let chain: Promise<unknown> = Promise.resolve();
  // One writer at a time inside this process; the lock file handles other processes.
  const serial = <R>(fn: () => Promise<R>): Promise<R> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  const read = async (): Promise<Record<string, string>> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return {};
      throw new ArgumentError(
        `state file ${path} cannot be read (${code ?? errorMessage(error)})`,
        {
          cause: error,
        },
      );
    }
    return parseStateFile(path, text);
  };

  const write = async (states: Record<string, string>): Promise<void> => {
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const body = `${JSON.stringify({ deltasync: 1, states } satisfies FileShape, null, 2)}\n`;
    const handle = await open(temp, "w", 0o600);
    try {
      await handle.writeFile(body, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await options.beforeRename?.(temp);
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await syncDirectory(dirname(path));
  };

  const locked = <R>(fn: () => Promise<R>): Promise<R> =>
    serial(async () => {
      const release = await acquireLock(`${path}.lock`, lockTimeoutMs);
      try {
        return await fn();
      } finally {
        await release();
      }
    });

  return {
    async get(key) {
      return (await read())[key];
    },
    compareAndSet: (key, expected, next) =>
      locked(async () => {
        const states = await read();
        if (states[key] !== expected) return false;
        states[key] = next;
        await write(states);
        return true;
      }),
    delete: (key) =>
      locked(async () => {
        const states = await read();
        if (!(key in states)) return;
        delete states[key];
        await write(states);
      }),
    async keys() {
      return Object.keys(await read()).sort();
    },
    async close() {
      await chain;
    },
  };
}

/** Parses a state file, failing with a one-line `StateError` when it is corrupt. */
export function parseStateFile(path: string, text: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StateError(`state file ${path} is corrupt: not JSON`);
  }
  const shape = json as Partial<FileShape> | null;
  if (
    shape === null ||
    typeof shape !== "object" ||
    shape.deltasync !== 1 ||
    shape.states === null ||
    typeof shape.states !== "object" ||
    Object.values(shape.states).some((s) => typeof s !== "string")
  ) {
    throw new StateError(`state file ${path} is corrupt: not a deltasync state file`);
  }
  return { ...shape.states };
}

async function acquireLock(lockPath: string, timeoutMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(dirname(lockPath), { recursive: true });
      await writeFile(lockPath, String(process.pid), { flag: "wx" });
      return () => unlink(lockPath).catch(() => undefined);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") {
        throw new ArgumentError(
          `cannot create the lock file ${lockPath} (${code ?? errorMessage(error)})`,
          {
            cause: error,
          },
        );
      }
    }
    if (await lockIsStale(lockPath)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new TransientError(`state file lock ${lockPath} is held by another process`);
    }
    await sleep(Math.min(5 * 2 ** attempt, 100));
  }
}

/** A lock is stale when its process is gone (killed mid-write) or it is older than a minute. */
async function lockIsStale(lockPath: string): Promise<boolean> {
  try {
    const [text, info] = await Promise.all([readFile(lockPath, "utf8"), stat(lockPath)]);
    if (Date.now() - info.mtimeMs > 60_000) return true;
    const pid = Number(text);
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - info.mtimeMs > 1000;
    if (pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  } catch {
    return false;
  }
}

function syncDirectory(dir: string): void {
  // Makes the rename itself durable (POSIX); not possible on every platform, so best effort.
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {}
}
