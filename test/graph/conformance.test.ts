import { afterAll, beforeAll, describe, it } from "vitest";
import { checkConformance, type StepKind } from "../../src/testing/index.js";
import { GraphEmulator } from "./emulator.js";
import { type GraphOp, graphHarness } from "./harness.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});

/** Every step kind, `orchestrated` included (pages are marked before delivery: reportsByContent). */
const steps: StepKind[] | undefined = undefined;

/** Scales every run count (GRAPH_CONFORMANCE_SCALE=5 for a long local run). */
const scale = Number(process.env.GRAPH_CONFORMANCE_SCALE ?? 1);
const n = (runs: number) => Math.max(1, Math.round(runs * scale));
/** Hundreds of histories over HTTP: minutes on a loaded 2-core machine, not vitest's one. */
const TIMEOUT = Math.max(1, scale) * 300_000;

/**
 * A runSync batch crossed from a new folder's page into the next folder's page and crashed; the
 * restart verified the message of the second page with the first folder, which called it
 * deleted (the composite now asks the round's later folders too).
 */
const compositeResume: [GraphOp[], unknown[], boolean] = [
  [],
  [
    { t: "concurrent", scope: 0, after: 0, ops: [{ t: "read", pick: 0 }] },
    { t: "mutate", op: { t: "addFolder", name: "b", parent: 0 } },
    {
      t: "concurrent",
      scope: 10,
      after: 0,
      ops: [
        { t: "receive", folder: 0, subject: "a", isRead: false },
        { t: "addFolder", name: "a", parent: 0 },
      ],
    },
    { t: "mutate", op: { t: "read", pick: 0 } },
    { t: "orchestrated", scope: 12, batchSize: 2, crashAfter: 3, between: [], fault: null },
  ],
  false,
];

/**
 * A message moved out of a folder into one the round had already visited; the crash came while
 * its removal from the old folder was in flight, and the old folder was deleted before the
 * restart. Verifying the mark asked only the old folder and the round's later ones, which called
 * it deleted (the composite's verify now follows the move, as its pages do).
 */
const movedIntoVisitedFolder: [GraphOp[], unknown[], boolean] = [
  [],
  [
    { t: "orchestrated", scope: 0, batchSize: 1, crashAfter: null, between: [], fault: null },
    { t: "fail", scope: 10, after: 0, between: [{ t: "move", pick: 9, folder: 1 }], fresh: false },
    {
      t: "checkpoint",
      scope: 0,
      after: 3,
      between: [{ t: "deleteFolder", pick: 0 }],
      fresh: false,
    },
  ],
  false,
];

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
        examples: [compositeResume, movedIntoVisitedFolder],
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
