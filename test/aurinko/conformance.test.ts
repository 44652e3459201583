import { afterAll, beforeAll, describe, it } from "vitest";
import { checkConformance } from "../../src/testing/index.js";
import { AurinkoEmulator } from "./emulator.js";
import { aurinkoHarness, type Family } from "./harness.js";

let emulator: AurinkoEmulator;
beforeAll(async () => {
  emulator = await AurinkoEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});

/**
 * Random histories per kind: CONFORMANCE_RUNS (CI sets 300 on Node 22 and 24), default 100.
 * Random seeds; AURINKO_CONFORMANCE_SEED (and AURINKO_CONFORMANCE_PATH) replay a failure.
 */
const RUNS = Number(process.env.CONFORMANCE_RUNS ?? 100);
const seed = process.env.AURINKO_CONFORMANCE_SEED
  ? Number(process.env.AURINKO_CONFORMANCE_SEED)
  : undefined;
const path = process.env.AURINKO_CONFORMANCE_PATH;
const replay = seed === undefined ? {} : { seed, ...(path ? { path } : {}) };
/** About 0.1 s per history on a loaded 2-core machine, with room. */
const timeout = Math.max(60_000, RUNS * 400);

describe("aurinko adapter conformance (emulator)", () => {
  // One scope per kind: each gets every history (a mixed harness would split them).
  for (const family of ["email", "calendar", "contacts", "tasks"] as const) {
    it(
      `${family}: ${RUNS} histories`,
      async () => {
        await checkConformance(aurinkoHarness(emulator, { families: [family] }), {
          numRuns: RUNS,
          ...replay,
        });
      },
      timeout,
    );
  }

  it(
    `calendar list and task lists: ${Math.ceil(RUNS / 5)} histories`,
    async () => {
      await checkConformance(aurinkoHarness(emulator, { families: ["folders"] }), {
        numRuns: Math.ceil(RUNS / 5),
        ...replay,
      });
    },
    timeout,
  );

  it(
    "every stream scope, with 429 + Retry-After, 408, 503 and connection resets",
    async () => {
      const families: Family[] = ["email", "calendar", "contacts", "tasks"];
      await checkConformance(aurinkoHarness(emulator, { families, chaosRate: 0.15 }), {
        numRuns: Math.ceil(RUNS / 5),
        ...replay,
      });
    },
    timeout,
  );
});
