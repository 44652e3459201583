import { afterAll, beforeAll, describe, it } from "vitest";
import { checkConformance, type StepKind } from "../../src/testing/index.js";
import { GraphEmulator } from "./emulator.js";
import { graphHarness } from "./harness.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});

/**
 * Every step kind but `orchestrated`, a known gap (docs/adapters/graph.md, "Known gaps"):
 * runSync stops inside a listing's first page (a full sync, or a folder of a composite listed
 * from scratch) with the delivered set in the saved state, a later batch of that page is
 * delivered, the process crashes before that batch's state is saved, an object of the batch is
 * deleted, and the restart re-reads the page as a new listing that does not mention it.
 * GRAPH_CONFORMANCE_ALL=1 runs it.
 */
const steps: StepKind[] | undefined =
  process.env.GRAPH_CONFORMANCE_ALL !== undefined
    ? undefined
    : ["mutate", "sync", "full", "limited", "checkpoint", "abort", "fail", "concurrent", "expire"];

/** Scales every run count (GRAPH_CONFORMANCE_SCALE=5 for a long local run). */
const scale = Number(process.env.GRAPH_CONFORMANCE_SCALE ?? 1);
const n = (runs: number) => Math.max(1, Math.round(runs * scale));
/** Hundreds of histories over HTTP: minutes on a loaded 2-core machine, not vitest's one. */
const TIMEOUT = Math.max(1, scale) * 300_000;

// 300 × 3 + 300 + 150 + 100 = 1450 histories in CI.
describe("graph adapter conformance (emulator)", () => {
  for (const family of ["mail", "calendar", "contacts"] as const) {
    it(
      `${family}: every non-composite scope, 300 histories`,
      async () => {
        await checkConformance(graphHarness(emulator, { families: [family], kind: "plain" }), {
          numRuns: n(300),
          steps,
        });
      },
      TIMEOUT,
    );
  }

  it(
    "composite scopes (every mail folder, every contact folder, the calendar list): 300 histories",
    async () => {
      await checkConformance(graphHarness(emulator, { kind: "composite" }), {
        numRuns: n(300),
        steps,
      });
    },
    TIMEOUT,
  );

  it(
    "expiry: the 410 family and 400 syncStateInvalid on every non-composite scope",
    async () => {
      await checkConformance(graphHarness(emulator, { expiry: true }), {
        numRuns: n(150),
        steps,
      });
    },
    TIMEOUT,
  );

  it(
    "with 429/503/504 + Retry-After and connection resets",
    async () => {
      await checkConformance(graphHarness(emulator, { chaosRate: 0.15, kind: "plain" }), {
        numRuns: n(100),
        steps,
      });
    },
    TIMEOUT,
  );
});
