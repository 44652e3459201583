import { afterAll, beforeAll, describe, it } from "vitest";
import { checkConformance } from "../../src/testing/index.js";
import { GraphEmulator } from "./emulator.js";
import { graphHarness } from "./harness.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});

/** Scales every run count (GRAPH_CONFORMANCE_SCALE=5 for a long local run). */
const scale = Number(process.env.GRAPH_CONFORMANCE_SCALE ?? 1);
const n = (runs: number) => Math.max(1, Math.round(runs * scale));

// 300 + 300 + 300 + 150 + 100 = 1150 histories in CI.
describe("graph adapter conformance (emulator)", () => {
  it("mail: a folder, every folder, the hierarchy", async () => {
    await checkConformance(graphHarness(emulator, { families: ["mail"] }), { numRuns: n(300) });
  });

  it("calendars: two calendar views and the calendar list", async () => {
    await checkConformance(graphHarness(emulator, { families: ["calendar"] }), { numRuns: n(300) });
  });

  it("contacts: every folder and the hierarchy", async () => {
    await checkConformance(graphHarness(emulator, { families: ["contacts"] }), { numRuns: n(300) });
  });

  it("expiry: the 410 family and 400 syncStateInvalid on every non-composite scope", async () => {
    await checkConformance(graphHarness(emulator, { expiry: true }), { numRuns: n(150) });
  });

  it("with 429/503/504 + Retry-After and connection resets", async () => {
    await checkConformance(graphHarness(emulator, { chaosRate: 0.15 }), { numRuns: n(100) });
  });
});
