import { describe, expect, it } from "vitest";
import { KeyedRunner } from "../../src/orchestrator/keyed.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { callbackMirror, createFakeScope } from "./fake.js";

const tick = () => new Promise((r) => setTimeout(r, 2));

describe("per-key serialisation", () => {
  it("never runs two tasks of one key at once; queues one follow-up that later callers join", async () => {
    const runner = new KeyedRunner();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const task = async () => {
      active++;
      runs++;
      maxActive = Math.max(maxActive, active);
      await tick();
      active--;
      return runs;
    };
    const results = await Promise.all(Array.from({ length: 6 }, () => runner.run("k", task)));
    expect(maxActive).toBe(1);
    expect(runs).toBe(2); // the running one + one follow-up shared by the 5 others
    expect(results).toEqual([1, 2, 2, 2, 2, 2]);
    expect(runner.busy("k")).toBe(false);
  });

  it("join mode shares the running run", async () => {
    const runner = new KeyedRunner();
    let runs = 0;
    const task = async () => {
      await tick();
      return ++runs;
    };
    const r = await Promise.all([runner.run("k", task, "join"), runner.run("k", task, "join")]);
    expect(r).toEqual([1, 1]);
  });

  it("different keys run in parallel; one failing key never stops the others", async () => {
    const runner = new KeyedRunner();
    let active = 0;
    let maxActive = 0;
    const task = (fail: boolean) => async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await tick();
      active--;
      if (fail) throw new Error("folder gone");
      return "ok";
    };
    const r = await Promise.allSettled([
      runner.run("a", task(false)),
      runner.run("b", task(true)),
      runner.run("c", task(false)),
    ]);
    expect(maxActive).toBe(3);
    expect(r.map((x) => x.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("a follow-up runs even when the running one failed", async () => {
    const runner = new KeyedRunner();
    const first = runner.run("k", async () => {
      await tick();
      throw new Error("x");
    });
    const second = runner.run("k", async () => "second");
    await expect(first).rejects.toThrow("x");
    await expect(second).resolves.toBe("second");
  });

  it("concurrent runSync calls on one key: serialised, state never overwritten, mirror equals truth", async () => {
    const fake = createFakeScope({ items: 60, pageSize: 7 });
    const store = createMemoryStateStore();
    const { mirror, callbacks } = callbackMirror();
    let active = 0;
    let maxActive = 0;
    const slow = {
      ...callbacks,
      async onUpdated(records: Parameters<typeof callbacks.onUpdated>[0]) {
        active++;
        maxActive = Math.max(maxActive, active);
        await tick();
        callbacks.onUpdated(records);
        active--;
      },
    };
    const runs = Array.from({ length: 5 }, (_, i) => {
      if (i === 2) fake.put("k000003", "changed between calls");
      return runSync(fake.syncable, { ...slow, store, batchSize: 10 });
    });
    const results = await Promise.all(runs);
    expect(maxActive).toBe(1);
    expect(results[0]?.fullSync).toBe(true);
    expect(results[1]?.fullSync).toBe(false);
    expect(results[4]).toBe(results[1]); // joined the queued follow-up
    expect(mirror).toEqual(fake.truth());
  });
});
