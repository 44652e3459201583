import { firstValueFrom, take, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import { ArgumentError } from "../../src/core/errors.js";
import { type WatchResult, watch } from "../../src/orchestrator/watch.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { callbackMirror, createFakeScope } from "./fake.js";

function until(predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (predicate() ? resolve() : setTimeout(check, 5));
    check();
  });
}

describe("watch", () => {
  it("a change whose notification was dropped is still picked up by the safety poll", async () => {
    const fake = createFakeScope({ items: 5 });
    const { mirror, callbacks } = callbackMirror();
    const results: WatchResult[] = [];
    const sub = watch(fake.syncable, {
      ...callbacks,
      store: createMemoryStateStore(),
      pollIntervalMs: 30,
      debounceMs: 5,
    }).subscribe((r) => results.push(r));
    try {
      await until(() => results.length >= 1);
      expect(results[0]?.trigger).toBe("initial");
      fake.dropNotifications = true;
      fake.put("lost-push", "nobody told us");
      await until(() => mirror.has("lost-push"));
      const picked = results.find((r) => r.updated > 0 && r !== results[0]);
      expect(picked?.trigger).toBe("poll");
      expect(mirror).toEqual(fake.truth());
    } finally {
      sub.unsubscribe();
    }
  });

  it("push notifications trigger a round and bursts coalesce", async () => {
    const fake = createFakeScope({ items: 2 });
    const { mirror, callbacks } = callbackMirror();
    const results: WatchResult[] = [];
    const sub = watch(fake.syncable, {
      ...callbacks,
      pollIntervalMs: 0, // no poll: only pushes can bring changes
      debounceMs: 20,
    }).subscribe((r) => results.push(r));
    try {
      await until(() => results.length === 1);
      for (let i = 0; i < 10; i++) fake.put(`burst-${i}`);
      await until(() => mirror.size === 12);
      const pushes = results.filter((r) => r.trigger === "push");
      expect(pushes.length).toBeGreaterThanOrEqual(1);
      expect(pushes.length).toBeLessThan(10);
      expect(pushes.reduce((n, r) => n + r.notifications, 0)).toBe(10);
    } finally {
      sub.unsubscribe();
    }
  });

  it("stops cleanly on unsubscribe and on abort: no more rounds, push listener released", async () => {
    const fake = createFakeScope({ items: 1 });
    let rounds = 0;
    const sub = watch(fake.syncable, { onUpdated() {}, pollIntervalMs: 10 }).subscribe(
      () => rounds++,
    );
    await until(() => rounds >= 2);
    expect(fake.listened()).toBe(true);
    sub.unsubscribe();
    expect(fake.listened()).toBe(false);
    const after = rounds;
    fake.put("x");
    await new Promise((r) => setTimeout(r, 60));
    expect(rounds).toBe(after);

    const controller = new AbortController();
    const all = firstValueFrom(
      watch(fake.syncable, { onUpdated() {}, pollIntervalMs: 10, signal: controller.signal }).pipe(
        toArray(),
      ),
    );
    setTimeout(() => controller.abort(), 40);
    const results = await all; // completes on abort
    expect(results.length).toBeGreaterThanOrEqual(1);
    expect(fake.listened()).toBe(false);
  });

  it("backs off on repeated errors and errors after maxConsecutiveErrors", async () => {
    const fake = createFakeScope({ items: 1 });
    fake.fault = () => {
      throw new Error("backend down");
    };
    const seen: unknown[] = [];
    const err = await firstValueFrom(
      watch(fake.syncable, {
        onUpdated() {},
        retry: false,
        errorBackoffMinMs: 5,
        maxConsecutiveErrors: 3,
        onError: (e) => void seen.push(e),
      }),
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe("backend down");
    expect(seen).toHaveLength(3);
    expect(fake.fetches).toBe(3);
  });

  it("recovers after errors and emits again", async () => {
    const fake = createFakeScope({ items: 3 });
    let n = 0;
    fake.fault = () => {
      if (++n <= 2) throw new Error("flaky");
    };
    const [r] = await firstValueFrom(
      watch(fake.syncable, { onUpdated() {}, retry: false, errorBackoffMinMs: 5 }).pipe(
        take(1),
        toArray(),
      ),
    );
    expect(r?.trigger).toBe("retry");
    expect(r?.updated).toBe(3);
  });

  it("a permanent error (ArgumentError) ends the watch at once", async () => {
    const fake = createFakeScope({ items: 1 });
    fake.fault = () => {
      throw new ArgumentError("bad");
    };
    await expect(firstValueFrom(watch(fake.syncable, { onUpdated() {} }))).rejects.toThrow(
      ArgumentError,
    );
    expect(fake.fetches).toBe(1);
  });
});
