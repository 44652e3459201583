import { describe, expect, it } from "vitest";
import { DeltaSyncError } from "../../src/core/errors.js";
import { createLifecycle } from "../../src/core/lifecycle.js";

describe("createLifecycle", () => {
  it("opens once, retries a failed open, closes once, and refuses use after close", async () => {
    let opens = 0;
    let closes = 0;
    let fail = true;
    const life = createLifecycle(
      async () => {
        opens++;
        if (fail) throw new Error("refused");
        return { id: opens };
      },
      () => void closes++,
      "the test connection",
    );
    await expect(life.get()).rejects.toThrow("refused");
    fail = false;
    const [a, b] = await Promise.all([life.get(), life.get()]);
    expect(a).toBe(b);
    expect(opens).toBe(2);
    await Promise.all([life.close(), life.close()]);
    expect(closes).toBe(1);
    expect(life.closed).toBe(true);
    const error = await life.get().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeltaSyncError);
    expect((error as Error).message).toBe(
      "the test connection was closed: create a new one to go on",
    );
  });

  it("closing before any use opens nothing", async () => {
    let opens = 0;
    const life = createLifecycle(
      async () => void opens++,
      () => {},
    );
    await life.close();
    await expect(life.get()).rejects.toBeInstanceOf(DeltaSyncError);
    expect(opens).toBe(0);
  });
});
