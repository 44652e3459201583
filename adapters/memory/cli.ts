/**
 * `memory:` sources for the CLI: an in-process memory server filled with generated data.
 *
 *   memory:demo?items=5000&seed=1          generated mailbox, calendar and address book (store alice)
 *   memory:demo?scope=hierarchy            scope: items (default) | hierarchy | server | gab | folder:<name>
 *   memory:demo?file=server.json           load the server from (and save it back to) a snapshot file
 *   memory:demo?mutate=5                   mutate the server 5 times a second while open (for watch)
 *   memory:empty                           an empty server
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import {
  DEMO_LAYOUT,
  generateDemoServer,
  mutateDemoServer,
  seededRandom,
} from "../../src/cli/demo-data.js";
import type { CliSource, OpenedSource } from "../../src/cli/source.js";
import { ArgumentError, StateError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { WriteTarget } from "../../src/two-way/types.js";
import { createMemoryServer, type MemoryServer, type MemorySnapshot } from "./index.js";
import { memoryWriteTarget } from "./memory-write.js";

function intParam(url: URL, name: string, fallback: number, min = 0): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new ArgumentError(
      `memory source: ${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** Loads a snapshot file, or undefined when it does not exist. */
export function loadSnapshot(file: string): MemorySnapshot | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as MemorySnapshot;
  } catch {
    throw new StateError(`memory snapshot ${file} is corrupt: not JSON`);
  }
}

/** Writes a snapshot atomically (temp file + rename). */
export function saveSnapshot(server: MemoryServer, file: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(server.snapshot()));
  renameSync(temp, file);
}

function scopeOf(server: MemoryServer, scope: string): Syncable {
  const store = server.store(DEMO_LAYOUT.store);
  if (scope === "items") return store.items;
  if (scope === "hierarchy") return store.subtree.hierarchy;
  if (scope === "server") return server.items;
  if (scope === "gab") return server.gab;
  if (scope.startsWith("folder:")) {
    const name = scope.slice("folder:".length);
    const folder = store.folders().find((f) => f.name === name);
    if (!folder) throw new ArgumentError(`memory source: no folder named ${JSON.stringify(name)}`);
    return store.folder(folder.sourcekey);
  }
  throw new ArgumentError(
    `memory source: unknown scope ${JSON.stringify(scope)} (items, hierarchy, server, gab, folder:<name>)`,
  );
}

/**
 * The write target of a scope: a folder's own items, or every item of the store (creates go to
 * the first mail folder unless they name one). Other scopes are not written.
 */
function targetOf(server: MemoryServer, scope: string): WriteTarget | undefined {
  const store = server.store(DEMO_LAYOUT.store);
  if (scope.startsWith("folder:")) {
    const name = scope.slice("folder:".length);
    const folder = store.folders().find((f) => f.name === name);
    return folder && memoryWriteTarget(server, folder.sourcekey);
  }
  if (scope !== "items") return undefined;
  const first = store.folders().find((f) => f.kind === "mail") ?? store.folders()[0];
  return first && memoryWriteTarget(server, first.sourcekey);
}

const PARAMS = ["items", "seed", "scope", "file", "mutate", "pageSize"];

export const cliSource: CliSource = {
  schemes: ["memory"],
  usage:
    "memory:demo?items=5000&seed=1&scope=items|hierarchy|server|gab|folder:<name>&file=<snapshot.json>&mutate=<per s>",
  async open(url): Promise<OpenedSource> {
    const dataset = url.pathname.replace(/^\/+/, "") || "demo";
    if (dataset !== "demo" && dataset !== "empty") {
      throw new ArgumentError(
        `memory source: unknown data set ${JSON.stringify(dataset)} (demo, empty)`,
      );
    }
    // A typo (`itmes=5`) must not silently fall back to the default.
    for (const name of url.searchParams.keys()) {
      if (!PARAMS.includes(name)) {
        throw new ArgumentError(
          `memory source: unknown parameter ${JSON.stringify(name)} (known: ${PARAMS.join(", ")})`,
        );
      }
    }
    const items = intParam(url, "items", 5000);
    const seed = intParam(url, "seed", 1);
    const mutate = intParam(url, "mutate", 0);
    const pageSize = intParam(url, "pageSize", 500, 1);
    const scope = url.searchParams.get("scope") ?? "items";
    const file = url.searchParams.get("file");
    const snapshot = file ? loadSnapshot(file) : undefined;
    // Every process generates the same server from the URL, so they share one identity.
    const epoch = snapshot ? undefined : `${dataset}:items=${items}:seed=${seed}`;
    const server = createMemoryServer({ pageSize, from: snapshot, epoch });
    if (!snapshot) {
      if (dataset === "demo") generateDemoServer(server, items, seed);
      else server.createStore(DEMO_LAYOUT.store);
      if (file) saveSnapshot(server, file);
    }
    const syncable = scopeOf(server, scope);
    let timer: ReturnType<typeof setInterval> | undefined;
    if (mutate > 0) {
      const rnd = seededRandom(Date.now() & 0xffff);
      timer = setInterval(() => {
        mutateDemoServer(server, rnd, mutate);
        if (file) saveSnapshot(server, file);
      }, 1000);
    }
    const writeTarget = targetOf(server, scope);
    return {
      syncable,
      ...(writeTarget ? { writeTarget } : {}),
      key: `memory:${dataset}/${DEMO_LAYOUT.store}/${scope}`,
      async close() {
        clearInterval(timer);
        if (file) saveSnapshot(server, file);
      },
    };
  },
};
