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
 * Known gap (docs/adapters/graph.md, "Known gaps"): on the composite scopes `orchestrated`
 * (runSync batches inside a folder's first listing page, a crash after a batch whose state was
 * not saved, a delete before the restart) can leave in the importer an object of that unsaved
 * batch. It runs on every other scope; GRAPH_CONFORMANCE_ALL=1 runs it on the composites too.
 */
const compositeSteps: StepKind[] | undefined =
  process.env.GRAPH_CONFORMANCE_ALL !== undefined
    ? undefined
    : ["mutate", "sync", "full", "limited", "checkpoint", "abort", "fail", "concurrent", "expire"];

/** Scales every run count (GRAPH_CONFORMANCE_SCALE=5 for a long local run). */
const scale = Number(process.env.GRAPH_CONFORMANCE_SCALE ?? 1);
const n = (runs: number) => Math.max(1, Math.round(runs * scale));

// 300 × 3 + 300 + 150 + 100 = 1450 histories in CI.
describe("graph adapter conformance (emulator)", () => {
  for (const family of ["mail", "calendar", "contacts"] as const) {
    it(`${family}: every non-composite scope, 300 histories`, async () => {
      await checkConformance(graphHarness(emulator, { families: [family], kind: "plain" }), {
        numRuns: n(300),
      });
    });
  }

  it("composite scopes (every mail folder, every contact folder, the calendar list): 300 histories", async () => {
    await checkConformance(graphHarness(emulator, { kind: "composite" }), {
      numRuns: n(300),
      steps: compositeSteps,
    });
  });

  it("expiry: the 410 family and 400 syncStateInvalid on every non-composite scope", async () => {
    await checkConformance(graphHarness(emulator, { expiry: true }), {
      numRuns: n(150),
    });
  });

  it("with 429/503/504 + Retry-After and connection resets", async () => {
    await checkConformance(graphHarness(emulator, { chaosRate: 0.15, kind: "plain" }), {
      numRuns: n(100),
    });
  });
});
