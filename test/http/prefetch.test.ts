import { describe, expect, it } from "vitest";
import type { ChangeSource, Page, PageRequest } from "../../src/core/source.js";
import { decodeState } from "../../src/core/state.js";
import { createSyncable } from "../../src/core/syncable.js";
import { prefetching } from "../../src/http/index.js";

/** Four pages of two changes; page tokens 1..3, cursor "done" on the last. */
function fakeSource(log: string[], failOnce?: number): ChangeSource<string, number> {
  let failed = false;
  return {
    async fetchPage(req: PageRequest<string, number>): Promise<Page<string, number>> {
      const n = req.page ?? 0;
      log.push(`fetch ${n}`);
      await new Promise((r) => setTimeout(r, 5));
      if (n === failOnce && !failed) {
        failed = true;
        throw new Error("prefetch failed");
      }
      const changes = [0, 1].map((i) => ({
        kind: "update" as const,
        object: { sourcekey: `k${n}-${i}`, type: "item" as const, data: n },
        created: true,
      }));
      return n < 3 ? { changes, nextPage: n + 1 } : { changes, newCursor: "done" };
    },
  };
}

describe("prefetching", () => {
  it("requests page N+1 before page N is imported, and the state only moves after the import", async () => {
    const log: string[] = [];
    const syncable = createSyncable({
      adapter: "t",
      scope: "s",
      source: prefetching(fakeSource(log)),
    });
    const checkpoints: unknown[] = [];
    const state = await syncable.sync(
      {
        update: async (obj) => {
          log.push(`import ${obj.sourcekey}`);
          await new Promise((r) => setTimeout(r, 10));
        },
      },
      undefined,
      { onCheckpoint: (s) => void checkpoints.push(decodeState(s, "t", "s").page) },
    );
    // Page 1 is on the wire while page 0 is being imported, and is not fetched twice.
    expect(log.indexOf("fetch 1")).toBeLessThan(log.indexOf("import k0-1"));
    expect(log.filter((l) => l.startsWith("fetch"))).toEqual([
      "fetch 0",
      "fetch 1",
      "fetch 2",
      "fetch 3",
    ]);
    expect(checkpoints).toEqual([1, 2, 3]);
    expect(decodeState(state, "t", "s").cursor).toBe("done");
  });

  it("refetches in the foreground when a read-ahead failed", async () => {
    const log: string[] = [];
    const syncable = createSyncable({
      adapter: "t",
      scope: "s",
      source: prefetching(fakeSource(log, 2)),
    });
    const keys: string[] = [];
    await syncable.sync({ update: (obj) => void keys.push(obj.sourcekey) });
    expect(keys).toHaveLength(8);
    expect(log.filter((l) => l === "fetch 2")).toHaveLength(2);
  });

  it("does not reuse a read-ahead for another request", async () => {
    const log: string[] = [];
    const syncable = createSyncable({
      adapter: "t",
      scope: "s",
      source: prefetching(fakeSource(log)),
    });
    // Stop after page 0 (maxChanges): page 1 was prefetched; a new sync with another signal
    // must not take it.
    const first = await syncable.exportChanges({}, undefined, { maxChanges: 2 });
    expect(first.complete).toBe(false);
    await syncable.sync({}, first.state, { signal: new AbortController().signal });
    expect(log.filter((l) => l === "fetch 1")).toHaveLength(2);
  });
});
