/**
 * Checks that a store's file can be written before anything is synced, with errors that name
 * the path: a sync that fails on its first save (after emitting changes) helps nobody.
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ArgumentError } from "../core/errors.js";

/**
 * Throws `ArgumentError` naming `file` when it is a directory, not writable, or its directory
 * (or the nearest existing ancestor, for one still to be created) is not a writable directory.
 * `what` names the file in the message, e.g. "state file".
 */
export function checkWritableFile(file: string, what: string): void {
  const info = statOrUndefined(file, file, what);
  if (info?.isDirectory()) throw new ArgumentError(`${what} ${file} is a directory`);
  if (info && !canWrite(file)) throw new ArgumentError(`${what} ${file} is not writable`);
  // Temp files, lock files and SQLite's -wal/-shm files live next to the file.
  let dir = dirname(resolve(file));
  for (;;) {
    const d = statOrUndefined(dir, file, what);
    if (d) {
      if (!d.isDirectory()) throw new ArgumentError(`${what} ${file}: ${dir} is not a directory`);
      if (!canWrite(dir))
        throw new ArgumentError(`${what} ${file}: directory ${dir} is not writable`);
      return;
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

function statOrUndefined(path: string, file: string, what: string) {
  try {
    return statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ENOTDIR") throw new ArgumentError(`${what} ${file}: a parent is not a directory`);
    throw new ArgumentError(`${what} ${file}: cannot access ${path} (${code ?? String(error)})`, {
      cause: error,
    });
  }
}

function canWrite(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
