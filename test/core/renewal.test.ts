import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { keepRenewed } from "../../src/notify/renewal.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("keepRenewed", () => {
  it("renews on schedule, backs off after failures, and resets after a success", async () => {
    const at: number[] = [];
    const errors: unknown[] = [];
    let fail = 0;
    const start = Date.now();
    const renewal = keepRenewed({
      nextDelay: () => 10_000,
      renew: async () => {
        at.push(Date.now() - start);
        if (fail > 0) {
          fail--;
          throw new Error("quota");
        }
      },
      onError: (e) => void errors.push(e),
      minBackoffMs: 1000,
      maxBackoffMs: 3000,
    });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(at).toEqual([10_000]);
    fail = 4;
    await vi.advanceTimersByTimeAsync(10_000); // fails
    await vi.advanceTimersByTimeAsync(1000); // fails, backoff 1 s
    await vi.advanceTimersByTimeAsync(2000); // fails, backoff 2 s
    await vi.advanceTimersByTimeAsync(3000); // fails, backoff capped at 3 s
    await vi.advanceTimersByTimeAsync(3000); // succeeds
    await vi.advanceTimersByTimeAsync(10_000); // back on the normal schedule
    expect(at).toEqual([10_000, 20_000, 21_000, 23_000, 26_000, 29_000, 39_000]);
    expect(errors).toHaveLength(4);
    await renewal.stop();
  });

  it("a failing renewal does not retry in a loop when the expiry has passed", async () => {
    let calls = 0;
    const renewal = keepRenewed({
      // Past expiry: the schedule says "now", but after a failure the backoff holds.
      nextDelay: () => -5000,
      renew: async () => {
        calls++;
        throw new Error("down");
      },
    });
    await vi.advanceTimersByTimeAsync(60_000 + 120_000 - 1);
    expect(calls).toBe(2);
    await renewal.stop();
  });

  it("stop() waits for a renewal in flight and no renewal follows it", async () => {
    let release: () => void = () => {};
    let calls = 0;
    const log: string[] = [];
    const renewal = keepRenewed({
      nextDelay: () => 1000,
      renew: async () => {
        calls++;
        log.push("renew start");
        await new Promise<void>((r) => {
          release = r;
        });
        log.push("renew end");
      },
    });
    await vi.advanceTimersByTimeAsync(1000);
    const stopping = renewal.stop().then(() => log.push("stopped"));
    expect(renewal.stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(log).toEqual(["renew start"]);
    release();
    await stopping;
    expect(log).toEqual(["renew start", "renew end", "stopped"]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(1);
    await renewal.stop();
  });
});
