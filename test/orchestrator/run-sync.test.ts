import diagnostics_channel from "node:diagnostics_channel";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ArgumentError,
  ConflictError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import { KeyedRunner } from "../../src/orchestrator/keyed.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { type BatchEvent, channels } from "../../src/orchestrator/telemetry.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { callbackMirror, createFakeScope } from "./fake.js";

const noWait = { minDelayMs: 0, maxDelayMs: 0 };

function collectBatches(): { sizes: number[]; stop(): void } {
  const sizes: number[] = [];
  const fn = (m: unknown) => sizes.push((m as BatchEvent).size);
  diagnostics_channel.subscribe(channels.batch, fn);
  return { sizes, stop: () => diagnostics_channel.unsubscribe(channels.batch, fn) };
}

describe("runSync", () => {
  it("delivers batches of exactly batchSize and mirrors the truth (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 120 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 150 })), { maxLength: 40 }),
        async (items, batchSize, pageSize, ops) => {
          const fake = createFakeScope({ items, pageSize });
          const store = createMemoryStateStore();
          const { mirror, callbacks } = callbackMirror();
          const sizes: number[] = [];
          const first = await runSync(fake.syncable, {
            ...callbacks,
            store,
            batchSize,
            onProgress: (p) => sizes.push(p.updated + p.deleted),
          });
          expect(first.fullSync).toBe(true);
          expect(first.updated).toBe(items);
          for (const [del, n] of ops) {
            const key = `k${String(n).padStart(6, "0")}`;
            if (del) fake.remove(key);
            else fake.put(key, `t${n}`);
          }
          sizes.length = 0;
          const second = await runSync(fake.syncable, {
            ...callbacks,
            store,
            batchSize,
            onProgress: (p) => sizes.push(p.updated + p.deleted),
          });
          expect(second.fullSync).toBe(false);
          expect(mirror).toEqual(fake.truth());
          const perBatch = sizes.map((s, i) => s - (sizes[i - 1] ?? 0));
          for (const s of perBatch.slice(0, -1)) expect(s).toBe(batchSize);
          for (const s of perBatch) expect(s).toBeLessThanOrEqual(batchSize);
          expect(second.batches).toBe(perBatch.length);
          expect(await store.get("fake:folder:fake")).toBe(second.state);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("rejects bad arguments", async () => {
    const fake = createFakeScope();
    await expect(runSync(fake.syncable, {})).rejects.toThrow(ArgumentError);
    await expect(runSync(fake.syncable, { onUpdated() {}, batchSize: 0 })).rejects.toThrow(
      ArgumentError,
    );
    await expect(runSync(fake.syncable, { onUpdated() {}, importer: {} })).rejects.toThrow(
      ArgumentError,
    );
  });

  it("passes the window and records it in the state", async () => {
    const fake = createFakeScope({ items: 3 });
    const seen: unknown[] = [];
    fake.fault = (_n, req) => {
      seen.push(req.window);
    };
    const store = createMemoryStateStore();
    await runSync(fake.syncable, { onUpdated() {}, store, daysWithin: 30 });
    expect(seen[0]).toEqual({ daysWithin: 30 });
    await expect(runSync(fake.syncable, { onUpdated() {}, store, daysWithin: 7 })).rejects.toThrow(
      /window/,
    );
  });

  it("resumes after a callback throws at every batch boundary; mirror equals truth", async () => {
    for (let failAt = 1; failAt <= 5; failAt++) {
      const fake = createFakeScope({ items: 47, pageSize: 7 });
      const store = createMemoryStateStore();
      const { mirror, callbacks } = callbackMirror();
      let batch = 0;
      const failing = {
        ...callbacks,
        onUpdated(records: Parameters<typeof callbacks.onUpdated>[0]) {
          if (++batch === failAt) throw new Error("disk full");
          callbacks.onUpdated(records);
        },
      };
      await expect(runSync(fake.syncable, { ...failing, store, batchSize: 10 })).rejects.toThrow(
        /disk full/,
      );
      // Exactly the confirmed batches are covered by the saved state.
      expect(mirror.size).toBe((failAt - 1) * 10);
      fake.put("k000001", "changed meanwhile");
      fake.remove("k000002");
      const r = await runSync(fake.syncable, { ...callbacks, store, batchSize: 10 });
      expect(r.fullSync).toBe(true); // resumed the half-done full sync
      const again = await runSync(fake.syncable, { ...callbacks, store, batchSize: 10 });
      expect(again.fullSync).toBe(false);
      expect(mirror).toEqual(fake.truth());
    }
  });

  it("reads the next batch while the callbacks write this one", async () => {
    const fake = createFakeScope({ items: 40, pageSize: 10 });
    const log: string[] = [];
    fake.fault = (n) => void log.push(`fetch ${n}`);
    const { mirror, callbacks } = callbackMirror();
    let batch = 0;
    await runSync(fake.syncable, {
      ...callbacks,
      batchSize: 10,
      async onUpdated(records) {
        const b = ++batch;
        log.push(`write ${b}`);
        await new Promise((r) => setTimeout(r, 5));
        callbacks.onUpdated(records);
        log.push(`written ${b}`);
      },
    });
    expect(mirror).toEqual(fake.truth());
    // Batch 2 is being fetched before batch 1 is written, and so on.
    for (let b = 1; b <= 3; b++) {
      expect(log.indexOf(`fetch ${b + 1}`)).toBeLessThan(log.indexOf(`written ${b}`));
    }
  });

  it("a failing batch cancels the batch read ahead; the next run resumes after the last saved one", async () => {
    const fake = createFakeScope({ items: 40, pageSize: 10 });
    const signals: AbortSignal[] = [];
    fake.fault = (_n, request) => void signals.push(request.signal);
    const store = createMemoryStateStore();
    const { mirror, callbacks } = callbackMirror();
    let batch = 0;
    await expect(
      runSync(fake.syncable, {
        ...callbacks,
        store,
        batchSize: 10,
        retry: false,
        async onUpdated(records) {
          if (++batch === 2) {
            await new Promise((r) => setTimeout(r, 5));
            throw new Error("disk full");
          }
          callbacks.onUpdated(records);
        },
      }),
    ).rejects.toThrow("disk full");
    expect(mirror.size).toBe(10);
    // Batch 3's read was under way while batch 2 failed: it is cancelled, not left running.
    expect(signals.length).toBeGreaterThanOrEqual(3);
    expect(signals.at(-1)?.aborted).toBe(true);
    const r = await runSync(fake.syncable, { ...callbacks, store, batchSize: 10 });
    expect(r.updated).toBe(30);
    expect(mirror).toEqual(fake.truth());
  });

  it("retries transient errors at every page, honouring retryAfterMs, then succeeds", async () => {
    const fake = createFakeScope({ items: 30, pageSize: 5 });
    // Every distinct page request fails once before it succeeds.
    const failed = new Set<string>();
    fake.fault = (_n, req) => {
      const id = JSON.stringify([req.cursor, req.page]);
      if (!failed.has(id)) {
        failed.add(id);
        throw new TransientError("HTTP 503", { status: 503, retryAfterMs: 0 });
      }
    };
    const retries: unknown[] = [];
    const fn = (m: unknown) => retries.push(m);
    diagnostics_channel.subscribe(channels.retry, fn);
    try {
      const { mirror, callbacks } = callbackMirror();
      const r = await runSync(fake.syncable, { ...callbacks, batchSize: 8, retry: noWait });
      expect(r.updated).toBeGreaterThanOrEqual(30);
      expect(mirror).toEqual(fake.truth());
      expect(retries.length).toBeGreaterThan(3);
    } finally {
      diagnostics_channel.unsubscribe(channels.retry, fn);
    }
  });

  it("fails with the last error after the retry limit; state stays at the last batch", async () => {
    const fake = createFakeScope({ items: 30, pageSize: 5 });
    const store = createMemoryStateStore();
    let fails = 0;
    fake.fault = (n) => {
      if (n > 3) throw new TransientError(`HTTP 429 #${++fails}`, { status: 429 });
    };
    const { mirror, callbacks } = callbackMirror();
    const err = await runSync(fake.syncable, {
      ...callbacks,
      store,
      batchSize: 5,
      retry: { ...noWait, retries: 3 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toBe("HTTP 429 #4");
    const saved = await store.get("fake:folder:fake");
    expect(saved).toBeDefined();
    fake.fault = undefined;
    await runSync(fake.syncable, { ...callbacks, store, batchSize: 5 });
    expect(mirror).toEqual(fake.truth());
  });

  it("does not retry non-transient errors", async () => {
    const fake = createFakeScope({ items: 3 });
    let calls = 0;
    fake.fault = () => {
      calls++;
      throw new Error("boom");
    };
    await expect(runSync(fake.syncable, { onUpdated() {}, retry: noWait })).rejects.toThrow("boom");
    expect(calls).toBe(1);
  });

  it("on StateInvalidError midway: resets, full-syncs, reports reset", async () => {
    const fake = createFakeScope({ items: 40, pageSize: 5 });
    const store = createMemoryStateStore();
    const { mirror, callbacks } = callbackMirror();
    await runSync(fake.syncable, { ...callbacks, store, batchSize: 10 });
    for (let i = 0; i < 30; i++) fake.put(`k${String(i).padStart(6, "0")}`, "v2");
    fake.remove("k000039");
    let resets = 0;
    let batch = 0;
    const r = await runSync(fake.syncable, {
      ...callbacks,
      onReset() {
        resets++;
        callbacks.onReset();
      },
      onUpdated(records) {
        callbacks.onUpdated(records);
        // The journal is compacted after the first confirmed batch: the saved state is now invalid.
        if (++batch === 1) {
          fake.remove("k000038");
          fake.compact();
        }
      },
      store,
      batchSize: 10,
    });
    expect(resets).toBe(1);
    expect(r.reset).toBe(true);
    expect(r.fullSync).toBe(true);
    expect(mirror).toEqual(fake.truth());
  });

  it("calls the importer's reset hook and gives up after maxResets", async () => {
    const fake = createFakeScope({ items: 5 });
    fake.fault = (_n, req) => {
      if (req.cursor !== undefined || req.page !== undefined) throw new StateInvalidError("gone");
    };
    let resets = 0;
    const store = createMemoryStateStore();
    await runSync(fake.syncable, { importer: {}, store, batchSize: 2 }).catch(() => undefined);
    const err = await runSync(fake.syncable, {
      importer: { reset: () => void resets++ },
      store,
      batchSize: 2,
      maxResets: 2,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateInvalidError);
    expect(resets).toBe(2);
  });

  it("aborts on the signal; the saved state resumes", async () => {
    const fake = createFakeScope({ items: 50, pageSize: 5 });
    const store = createMemoryStateStore();
    const { mirror, callbacks } = callbackMirror();
    const controller = new AbortController();
    let n = 0;
    await expect(
      runSync(fake.syncable, {
        ...callbacks,
        onUpdated(records) {
          callbacks.onUpdated(records);
          if (++n === 2) controller.abort(new Error("stop"));
        },
        store,
        batchSize: 10,
        signal: controller.signal,
      }),
    ).rejects.toThrow("stop");
    await runSync(fake.syncable, { ...callbacks, store, batchSize: 10 });
    expect(mirror).toEqual(fake.truth());
  });

  it("emits one batch event per batch with the documented payload", async () => {
    const fake = createFakeScope({ items: 25, pageSize: 4 });
    const events: Record<string, unknown[]> = {};
    const subs = Object.entries(channels).map(([name, channel]) => {
      const fn = (m: unknown) => {
        events[name] ??= [];
        events[name].push(m);
      };
      diagnostics_channel.subscribe(channel, fn);
      return () => diagnostics_channel.unsubscribe(channel, fn);
    });
    try {
      const r = await runSync(fake.syncable, { onUpdated() {}, batchSize: 10, key: "acct-1:mail" });
      expect(events.start).toHaveLength(1);
      expect(events.batch).toHaveLength(3);
      expect(events.end).toHaveLength(1);
      expect(events.page?.length).toBeGreaterThanOrEqual(7);
      const batch = events.batch?.[0] as BatchEvent;
      expect(batch).toMatchObject({
        key: "acct-1:mail",
        adapter: "fake",
        scope: "folder:fake",
        batch: 1,
        size: 10,
        updated: 10,
        deleted: 0,
        read: 0,
      });
      expect(typeof batch.runId).toBe("string");
      expect(typeof batch.durationMs).toBe("number");
      expect((events.batch as BatchEvent[]).map((b) => b.size)).toEqual([10, 10, 5]);
      expect(events.end?.[0]).toMatchObject({
        updated: 25,
        batches: 3,
        fullSync: true,
        reset: false,
      });
      expect(r.batches).toBe(3);
      for (const e of [...(events.batch ?? []), ...(events.end ?? [])]) {
        expect(JSON.stringify(e)).not.toContain(r.state);
      }
    } finally {
      for (const s of subs) s();
    }
  });

  it("saving is compare-and-set: a concurrent writer makes the run fail with ConflictError", async () => {
    const fake = createFakeScope({ items: 30, pageSize: 5 });
    const store = createMemoryStateStore();
    let n = 0;
    const err = await runSync(fake.syncable, {
      onUpdated: async () => {
        if (++n === 2)
          await store.compareAndSet(
            "fake:folder:fake",
            await store.get("fake:folder:fake"),
            "ds1.other",
          );
      },
      store,
      batchSize: 10,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(await store.get("fake:folder:fake")).toBe("ds1.other");
    // With saveState: returning false means the same.
    const err2 = await runSync(fake.syncable, {
      onUpdated() {},
      saveState: () => false,
      batchSize: 10,
      key: "other",
    }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ConflictError);
  });

  it("two runners racing on one store key: exactly one wins each save, no overwrite", async () => {
    const store = createMemoryStateStore();
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map(() => {
        const fake = createFakeScope({ items: 20, pageSize: 5 });
        return runSync(fake.syncable, {
          onUpdated: () => new Promise((r) => setTimeout(r, 1)),
          store,
          batchSize: 5,
          runner: new KeyedRunner(), // bypass per-key serialisation on purpose
        });
      }),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const conflicts = results.filter(
      (r) => r.status === "rejected" && r.reason instanceof ConflictError,
    );
    expect(ok.length).toBe(1);
    expect(conflicts.length).toBe(3);
  });

  it("collects per-batch sizes via telemetry helper", async () => {
    const c = collectBatches();
    try {
      const fake = createFakeScope({ items: 9, pageSize: 2 });
      await runSync(fake.syncable, { onUpdated() {}, batchSize: 4 });
      expect(c.sizes).toEqual([4, 4, 1]);
    } finally {
      c.stop();
    }
  });
});
