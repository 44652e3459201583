import { afterAll, beforeAll, describe, it } from "vitest";
import { checkConformance } from "../../src/testing/index.js";
import { GoogleEmulator } from "./emulator.js";
import { googleHarness } from "./harness.js";

let emulator: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});

/** Scales every run count (GOOGLE_CONFORMANCE_SCALE=5 for a long local run). */
const scale = Number(process.env.GOOGLE_CONFORMANCE_SCALE ?? 1);
const n = (runs: number) => Math.max(1, Math.round(runs * scale));

// 150 + 50 + 120 + 40 + 60 = 420 histories in CI.
describe("google adapter conformance (emulator)", () => {
  it("calendar events (singleEvents false and true): 150 histories", async () => {
    await checkConformance(googleHarness(emulator, { families: ["calendar"] }), {
      numRuns: n(150),
    });
  });

  it("calendar list and contacts: 50 histories", async () => {
    await checkConformance(googleHarness(emulator, { families: ["calendarList", "contacts"] }), {
      numRuns: n(50),
    });
  });

  it("Gmail history: 120 histories", async () => {
    await checkConformance(googleHarness(emulator, { families: ["gmail"] }), { numRuns: n(120) });
  });

  it("every scope at once: 40 histories", async () => {
    await checkConformance(googleHarness(emulator), { numRuns: n(40) });
  });

  it("with injected 5xx, 429 + Retry-After, 403 usageLimits and connection resets: 60 histories", async () => {
    await checkConformance(googleHarness(emulator, { chaosRate: 0.2 }), { numRuns: n(60) });
  });
});
