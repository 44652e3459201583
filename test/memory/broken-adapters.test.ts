/**
 * The kit must catch broken adapters: each wrapper below breaks one promise of the contract.
 */
import { describe, expect, it } from "vitest";
import { StateError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { Importer } from "../../src/core/types.js";
import { ConformanceError, checkConformance, checkStateErrors } from "../../src/testing/index.js";
import { memoryHarness } from "./harness.js";

type Breakage = (s: Syncable) => Syncable;

/** A plain-object copy of a syncable (class instances lose their methods when spread). */
const plain = (s: Syncable): Syncable => ({
  adapter: s.adapter,
  scope: s.scope,
  supportsPush: s.supportsPush,
  sync: (i, st, o) => s.sync(i, st, o),
  exportChanges: (i, st, o) => s.exportChanges(i, st, o),
  notifications: (f) => s.notifications(f),
  subscribe: (sink, f) => s.subscribe(sink, f),
});

const wrapImporter = (s: Syncable, change: (i: Importer) => Importer): Syncable => ({
  ...plain(s),
  sync: (i, st, o) => s.sync(change(i), st, o),
  exportChanges: (i, st, o) => s.exportChanges(change(i), st, o),
});

const breakages: Record<string, Breakage> = {
  "drops deletes": (s) => wrapImporter(s, (i) => ({ ...i, delete: undefined })),
  "drops read-state changes": (s) => wrapImporter(s, (i) => ({ ...i, read: undefined })),
  "exports stale data": (s) =>
    wrapImporter(s, (i) => ({
      ...i,
      update: (obj, flags) => (flags.created ? i.update?.(obj, flags) : undefined),
    })),
  "claims completion after maxChanges": (s) => ({
    ...plain(s),
    exportChanges: async (i, st, o) => ({ ...(await s.exportChanges(i, st, o)), complete: true }),
  }),
  "skips ahead on an expired state": (s) => ({
    ...plain(s),
    sync: (i, st, o) => s.sync(i, st, o).catch(() => s.sync({}, undefined, o)),
  }),
};

describe("the conformance kit fails on broken adapters", () => {
  for (const [name, breakage] of Object.entries(breakages)) {
    it(name, async () => {
      const harness = memoryHarness({
        wrap: (scope) => ({ ...scope, syncable: breakage(scope.syncable) }),
      });
      const run = checkConformance(harness, { numRuns: 300, seed: 42 });
      await expect(run).rejects.toThrow(/ConformanceError|Property failed/);
      await run.catch((e: Error) =>
        expect(String(e.cause ?? e)).toMatch(/ConformanceError|expected StateInvalidError/),
      );
    });
  }

  it("a scope that accepts corrupt states fails checkStateErrors", async () => {
    const backend = await memoryHarness().setup();
    const good = backend.scopes[0]?.syncable as Syncable;
    const lenient: Syncable = {
      ...plain(good),
      sync: (i, st, o) =>
        good
          .sync(i, st, o)
          .catch((e) => (e instanceof StateError ? good.sync(i, undefined, o) : Promise.reject(e))),
    };
    await expect(checkStateErrors(lenient)).rejects.toBeInstanceOf(ConformanceError);
  });
});
