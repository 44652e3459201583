/**
 * Stores given a path check it when created — before anything is synced — and every error
 * names the path.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ArgumentError, StateError } from "../../src/core/errors.js";
import { createFileStateStore } from "../../src/stores/file.js";
import { createSqliteStateStore } from "../../src/stores/sqlite.js";

const dir = mkdtempSync(join(tmpdir(), "deltasync-paths-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

describe.each([
  ["file", (p: string) => createFileStateStore(p), "s.json"],
  ["sqlite", (p: string) => createSqliteStateStore(p), "s.sqlite"],
] as const)("%s store paths", (_name, create, file) => {
  it("a directory: ArgumentError naming it", () => {
    const path = join(dir, `${file}.d`);
    mkdirSync(path);
    expect(() => create(path)).toThrow(ArgumentError);
    expect(() => create(path)).toThrow(`state file ${path} is a directory`);
  });

  it("a parent that is a file: ArgumentError naming the path", () => {
    const parent = join(dir, `${file}.parent`);
    writeFileSync(parent, "x");
    const path = join(parent, file);
    expect(() => create(path)).toThrow(`state file ${path}: a parent is not a directory`);
  });

  it("missing directories are fine (created on first save)", async () => {
    const store = create(join(dir, `${file}.new`, "deeper", file));
    expect(await store.compareAndSet("k", undefined, "v")).toBe(true);
    await store.close();
  });

  it.skipIf(isRoot)("a read-only directory: ArgumentError at creation, naming it", () => {
    const ro = join(dir, `${file}.ro`);
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    try {
      expect(() => create(join(ro, file))).toThrow(/directory .* is not writable/);
    } finally {
      chmodSync(ro, 0o755);
    }
  });
});

describe("corrupt files name themselves", () => {
  it("a .sqlite state that is not a database: StateError with the path", () => {
    const path = join(dir, "text.sqlite");
    writeFileSync(path, "this is not a database, just some text that is long enough");
    expect(() => createSqliteStateStore(path)).toThrow(StateError);
    expect(() => createSqliteStateStore(path)).toThrow(
      `state file ${path} is not a SQLite database`,
    );
  });
});
