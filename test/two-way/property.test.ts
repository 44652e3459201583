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
      examples: [
        // A crash-replayed create is found by `fetch` (its echo known by changeKey alone); the
        // memory server keeps the changeKey through a move, so a remote move of it looked like
        // our echo and the copy kept the old folder.
        [
          "client-wins",
          [
            { t: "lcreate", folder: 5, label: "b" },
            { t: "push", at: 1, fault: "after" },
            { t: "push", at: 1, fault: "after" },
            { t: "rmove", pick: 3, folder: 6 },
          ],
        ],
        // The same with a remote read flag (the memory server's changeKey ignores flags too).
        [
          "merge",
          [
            { t: "rcreate", folder: 7, label: "b" },
            { t: "rupdate", pick: 13, label: "b" },
            { t: "lread", pick: 13, read: false },
            { t: "lupdate", pick: 0, label: "b" },
            { t: "push", at: 2, fault: "writeback" },
            { t: "push", at: 2, fault: "before" },
            { t: "rread", pick: 8, read: true },
          ],
        ],
      ],
    });
  }, 600_000);
});
