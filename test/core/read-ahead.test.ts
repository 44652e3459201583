import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ImporterError } from "../../src/core/errors.js";
import type { ChangeSource, Page, PageRequest } from "../../src/core/source.js";
import { decodeState } from "../../src/core/state.js";
import { createSyncable } from "../../src/core/syncable.js";

interface FakeOptions {
  pages?: number;
  perPage?: number;
  /** Fetches (by 0-based call number) that fail. */
  failCalls?: Set<number>;
  delayMs?: number;
  readAhead?: ChangeSource["readAhead"];
}

/**
 * `pages` pages of `perPage` changes, page tokens 1..pages-1, cursor "done" on the last. No
 * `position` on changes, so a round stopped inside a page resumes by skipping (the engine's
 * "keep the page" path).
 */
function fakeSource(log: string[], options: FakeOptions = {}) {
  const { pages = 4, perPage = 2, failCalls = new Set(), delayMs = 1 } = options;
  const signals: AbortSignal[] = [];
  let calls = 0;
  const source: ChangeSource<string, number> = {
    readAhead: options.readAhead ?? true,
    async fetchPage(req: PageRequest<string, number>): Promise<Page<string, number>> {
      const call = calls++;
      const n = req.page ?? 0;
      log.push(`fetch ${n}`);
      signals.push(req.signal);
      await new Promise((r) => setTimeout(r, delayMs));
      req.signal.throwIfAborted();
      if (failCalls.has(call)) throw new Error(`fetch ${n} failed`);
      const changes = Array.from({ length: perPage }, (_, i) => ({
        kind: "update" as const,
        object: { sourcekey: `k${n}-${i}`, type: "item" as const, data: n },
        created: true,
      }));
      return n < pages - 1 ? { changes, nextPage: n + 1 } : { changes, newCursor: "done" };
    },
  };
  return { source, signals, fetches: () => log.filter((l) => l.startsWith("fetch")) };
}

const scope = (source: ChangeSource) => createSyncable({ adapter: "t", scope: "s", source });

afterEach(() => {
  vi.useRealTimers();
});

describe("engine read-ahead (ChangeSource.readAhead)", () => {
  it("requests page N+1 before page N is imported; the state moves only after the import", async () => {
    const log: string[] = [];
    const { source, fetches } = fakeSource(log);
    const checkpoints: unknown[] = [];
    const state = await scope(source).sync(
      {
        update: async (obj) => {
          log.push(`import ${obj.sourcekey}`);
          await new Promise((r) => setTimeout(r, 5));
        },
      },
      undefined,
      { onCheckpoint: (s) => void checkpoints.push(decodeState(s, "t", "s").page) },
    );
    expect(log.indexOf("fetch 1")).toBeLessThan(log.indexOf("import k0-0"));
    expect(fetches()).toEqual(["fetch 0", "fetch 1", "fetch 2", "fetch 3"]);
    expect(checkpoints).toEqual([1, 2, 3]);
    expect(decodeState(state, "t", "s").cursor).toBe("done");
  });

  it("lets the request start before a synchronous importer holds the thread", async () => {
    const log: string[] = [];
    const { source } = fakeSource(log);
    await scope(source).sync({
      update: (obj) => {
        // Busy, as a synchronous database write is: no event-loop turn until the page is done.
        log.push(`import ${obj.sourcekey}`);
      },
    });
    expect(log.indexOf("fetch 1")).toBeLessThan(log.indexOf("import k0-0"));
  });

  it("asks for page N+1 before it reads page N's changes (a source may map them lazily)", async () => {
    const log: string[] = [];
    const { source } = fakeSource(log);
    const lazy: ChangeSource<string, number> = {
      ...source,
      async fetchPage(req) {
        const page = await source.fetchPage(req);
        return {
          ...page,
          get changes() {
            log.push(`map ${req.page ?? 0}`);
            return page.changes;
          },
        };
      },
    };
    await scope(lazy).sync({ update: () => undefined });
    expect(log.slice(0, 3)).toEqual(["fetch 0", "fetch 1", "map 0"]);
    expect(log.indexOf("fetch 2")).toBeLessThan(log.indexOf("map 1"));
  });

  it("is off unless the source asks for it", async () => {
    const log: string[] = [];
    const { source } = fakeSource(log, { readAhead: false });
    await scope(source).sync({ update: (obj) => void log.push(`import ${obj.sourcekey}`) });
    expect(log.indexOf("fetch 1")).toBeGreaterThan(log.indexOf("import k0-1"));
  });

  it("a read-ahead that failed in this round is that page's error; the checkpoint holds", async () => {
    const log: string[] = [];
    const { source, fetches } = fakeSource(log, { failCalls: new Set([2]) });
    const syncable = scope(source);
    let checkpoint: string | undefined;
    const keys: string[] = [];
    await expect(
      syncable.sync({ update: (obj) => void keys.push(obj.sourcekey) }, undefined, {
        onCheckpoint: (s) => {
          checkpoint = s;
        },
      }),
    ).rejects.toThrow("fetch 2 failed");
    // Pages 0 and 1 were imported; the state says page 2 comes next.
    expect(keys).toEqual(["k0-0", "k0-1", "k1-0", "k1-1"]);
    expect(decodeState(checkpoint as string, "t", "s").page).toBe(2);
    await syncable.sync({ update: (obj) => void keys.push(obj.sourcekey) }, checkpoint);
    expect(keys.slice(4)).toEqual(["k2-0", "k2-1", "k3-0", "k3-1"]);
    expect(fetches().filter((f) => f === "fetch 2")).toHaveLength(2);
  });

  it("hands the next maxChanges round the page it stopped inside and the page it read ahead", async () => {
    const log: string[] = [];
    const { source, fetches } = fakeSource(log, { perPage: 3 });
    const syncable = scope(source);
    const keys: string[] = [];
    const importer = { update: (obj: { sourcekey: string }) => void keys.push(obj.sourcekey) };
    let state: string | undefined;
    for (;;) {
      const outcome = await syncable.exportChanges(importer, state, { maxChanges: 2 });
      state = outcome.state;
      if (outcome.complete) break;
    }
    expect(keys).toEqual([0, 1, 2, 3].flatMap((n) => [0, 1, 2].map((i) => `k${n}-${i}`)));
    // Every page fetched once, although rounds stopped inside pages 0, 1 and 2.
    expect(fetches()).toEqual(["fetch 0", "fetch 1", "fetch 2", "fetch 3"]);
  });

  it("a kept page whose fetch failed is fetched again in the next round", async () => {
    const log: string[] = [];
    const { source, fetches } = fakeSource(log, { failCalls: new Set([1]) });
    const syncable = scope(source);
    const keys: string[] = [];
    const importer = { update: (obj: { sourcekey: string }) => void keys.push(obj.sourcekey) };
    const first = await syncable.exportChanges(importer, undefined, { maxChanges: 2 });
    expect(first.complete).toBe(false);
    await syncable.sync(importer, first.state);
    expect(keys).toHaveLength(8);
    expect(fetches().filter((f) => f === "fetch 1")).toHaveLength(2);
  });

  it("kept pages older than maxAgeMs are fetched again", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const log: string[] = [];
    const { source, fetches } = fakeSource(log, { readAhead: { maxAgeMs: 1000 } });
    const syncable = scope(source);
    const first = await syncable.exportChanges({}, undefined, { maxChanges: 2 });
    vi.setSystemTime(Date.now() + 1001);
    await syncable.sync({}, first.state);
    expect(fetches().filter((f) => f === "fetch 1")).toHaveLength(2);
  });

  it("a round from another position drops what is kept", async () => {
    const log: string[] = [];
    const { source, fetches } = fakeSource(log);
    const syncable = scope(source);
    const first = await syncable.exportChanges({}, undefined, { maxChanges: 2 });
    expect(first.complete).toBe(false);
    // A full sync again (no state): page 0, not the kept page 1.
    const keys: string[] = [];
    await syncable.sync({ update: (obj) => void keys.push(obj.sourcekey) });
    expect(keys[0]).toBe("k0-0");
    expect(keys).toHaveLength(8);
    expect(fetches()).toEqual(["fetch 0", "fetch 1", "fetch 0", "fetch 1", "fetch 2", "fetch 3"]);
  });

  it("an abort reaches the request in flight; an importer failure drops it", async () => {
    const log: string[] = [];
    const { source, signals } = fakeSource(log, { delayMs: 20 });
    const controller = new AbortController();
    await expect(
      scope(source).sync(
        {
          update: () => {
            controller.abort(new Error("stop"));
          },
        },
        undefined,
        { signal: controller.signal },
      ),
    ).rejects.toThrow("stop");
    expect(signals[1]?.aborted).toBe(true);

    const log2: string[] = [];
    const second = fakeSource(log2, { delayMs: 20 });
    await expect(
      scope(second.source).sync({
        update: () => {
          throw new Error("disk full");
        },
      }),
    ).rejects.toBeInstanceOf(ImporterError);
    expect(second.signals[1]?.aborted).toBe(true);
  });

  it("property: any mix of maxChanges rounds, fetch and importer failures and rewinds to an older state imports every change once, in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.record({
            maxChanges: fc.integer({ min: 1, max: 7 }),
            failAt: fc.nat(12),
            rewind: fc.option(fc.nat(), { freq: 4 }),
          }),
          {
            minLength: 1,
            maxLength: 12,
          },
        ),
        fc.uniqueArray(fc.nat(20), { maxLength: 4 }),
        async (pages, perPage, rounds, failCalls) => {
          const { source } = fakeSource([], {
            pages,
            perPage,
            failCalls: new Set(failCalls),
            delayMs: 0,
          });
          const syncable = scope(source);
          const mirror: string[] = [];
          let state: string | undefined;
          let done = false;
          let calls = 0;
          // A failing round keeps the last state it returned or checkpointed; then go on.
          const step = async (maxChanges: number | undefined, failAt: number | undefined) => {
            const imported: string[] = [];
            let checkpoint = state;
            try {
              const outcome = await syncable.exportChanges(
                {
                  update: (obj) => {
                    if (calls++ === failAt) throw new Error("importer failed");
                    imported.push(obj.sourcekey);
                  },
                },
                state,
                {
                  maxChanges,
                  onCheckpoint: (s) => {
                    checkpoint = s;
                    mirror.push(...imported.splice(0));
                  },
                },
              );
              mirror.push(...imported);
              state = outcome.state;
              done = outcome.complete;
            } catch {
              // Changes after the last checkpoint were not confirmed: they come again.
              state = checkpoint;
            }
          };
          // Every state the caller held, with the mirror it goes with.
          const held: [string | undefined, string[]][] = [[undefined, []]];
          for (const round of rounds) {
            if (round.rewind !== null) {
              // Going on from an older state (a restored backup) must work as well.
              const [old, copy] = held[round.rewind % held.length] as [
                string | undefined,
                string[],
              ];
              state = old;
              mirror.splice(0, mirror.length, ...copy);
              done = false;
            }
            await step(round.maxChanges, calls + round.failAt);
            held.push([state, [...mirror]]);
            if (done) break;
          }
          for (let i = 0; !done && i < 20; i++) await step(undefined, undefined);
          expect(done).toBe(true);
          const all = Array.from({ length: pages }, (_, n) =>
            Array.from({ length: perPage }, (_, i) => `k${n}-${i}`),
          ).flat();
          expect(mirror).toEqual(all);
        },
      ),
      { numRuns: 300 },
    );
  });
  it("an abort reaches a page requested ahead that the round is already waiting for", async () => {
    // Page 1 waits until its request is aborted (a source that waits inside a page, like
    // Aurinko's "not ready yet"); the round waits for it once page 0 is imported.
    const source: ChangeSource<string, number> = {
      readAhead: true,
      async fetchPage(req) {
        if (req.page === 1) {
          await new Promise((_, reject) => {
            req.signal.addEventListener("abort", () => reject(req.signal.reason), { once: true });
          });
        }
        return {
          changes: [
            { kind: "update", object: { sourcekey: "a", type: "item", data: 0 }, created: true },
          ],
          nextPage: 1,
        };
      },
    };
    const controller = new AbortController();
    let imported = 0;
    const round = scope(source).sync(
      {
        update: () => {
          imported++;
          setTimeout(() => controller.abort(new Error("stop")), 5);
        },
      },
      null,
      { signal: controller.signal },
    );
    await expect(round).rejects.toThrow("stop");
    expect(imported).toBe(1);
  }, 5_000);
  it("a first sync asks for its first page while the identity resolves; a state names its backend first", async () => {
    const log: string[] = [];
    let identity = "server-1";
    const source: ChangeSource<string, number> = {
      readAhead: true,
      async identity() {
        log.push("identity asked");
        await new Promise((r) => setTimeout(r, 20));
        log.push("identity known");
        return identity;
      },
      async fetchPage(req) {
        log.push(`fetch ${req.cursor ?? "start"}`);
        return {
          changes: [
            { kind: "update", object: { sourcekey: "a", type: "item", data: 0 }, created: true },
          ],
          newCursor: "c1",
        };
      },
    };
    const state = await scope(source).sync({ update: () => log.push("import") });
    expect(log).toEqual(["fetch start", "identity asked", "identity known", "import"]);
    expect(decodeState(state, "t", "s").backend).toBe("server-1");

    log.length = 0;
    await scope(source).sync({ update: () => log.push("import") }, state);
    expect(log).toEqual(["identity asked", "identity known", "fetch c1", "import"]);

    // Another backend: refused before anything is fetched.
    log.length = 0;
    identity = "server-2";
    await expect(scope(source).sync({}, state)).rejects.toThrow(/another backend/);
    expect(log).toEqual(["identity asked", "identity known"]);
  });
  it("a failing beginFullSync drops the first page requested beside the identity", async () => {
    const signals: AbortSignal[] = [];
    const source: ChangeSource<string, number> = {
      readAhead: true,
      identity: async () => "server-1",
      async fetchPage(req) {
        signals.push(req.signal);
        await new Promise((r) => setTimeout(r, 20));
        return { changes: [], newCursor: "c1" };
      },
    };
    const importer = {
      beginFullSync: () => {
        throw new Error("hook failed");
      },
    };
    await expect(scope(source).sync(importer)).rejects.toThrow("hook failed");
    expect(signals).toHaveLength(1);
    expect(signals[0]?.aborted).toBe(true);
  });
  it("a first sync that requests its first page beside the identity drops pages kept for other positions", async () => {
    const log: string[] = [];
    const { source: fake } = fakeSource(log);
    const source: ChangeSource<string, number> = { ...fake, identity: () => "server-1" };
    // Stops inside page 1: page 1 and page 2 stay kept for the next round of that chain.
    await scope(source).sync({}, null, { maxChanges: 3 });
    log.length = 0;
    // A new first sync from nothing: every page is fetched afresh, none taken from the old chain.
    const seen: unknown[] = [];
    await scope(source).sync({ update: (obj) => void seen.push(obj.sourcekey) });
    expect(log).toEqual(["fetch 0", "fetch 1", "fetch 2", "fetch 3"]);
    expect(seen).toHaveLength(8);
  });
});
