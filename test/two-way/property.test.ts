/**
 * The two-way conformance kit against the memory server (the reference): random histories of
 * local and remote edits, moves and read flags, pulls, full syncs, restarts, and pushes that
 * fail or crash at every step, under four policies. `TWO_WAY_RUNS` for more histories.
 */
import { describe, it } from "vitest";
import { checkTwoWayConformance } from "../../src/testing/two-way.js";
import { memoryTwoWayHarness } from "./harnesses.js";

const RUNS = Number(process.env.TWO_WAY_RUNS ?? 1000);

describe("two-way conformance (memory)", () => {
  it(`${RUNS} histories converge without losing a local edit`, async () => {
    await checkTwoWayConformance(memoryTwoWayHarness(), {
      numRuns: RUNS,
      seed: process.env.TWO_WAY_SEED ? Number(process.env.TWO_WAY_SEED) : undefined,
      path: process.env.TWO_WAY_PATH,
    });
  }, 600_000);
});
