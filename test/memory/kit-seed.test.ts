/**
 * The kits draw their histories from fast-check's global seed when given no `seed`: CI sets it
 * per commit (FC_SEED, test/setup/fast-check-seed.ts) so a red run replays exactly.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { checkConformance, checkNotificationFilters } from "../../src/testing/index.js";
import { checkTwoWayConformance } from "../../src/testing/two-way.js";
import type { TwoWayHarness } from "../../src/testing/two-way-harness.js";
import { memoryTwoWayHarness } from "../two-way/harnesses.js";
import { type MemoryOp, memoryHarness } from "./harness.js";

const saved = fc.readConfigureGlobal();
afterEach(() => fc.configureGlobal(saved));

/** What a kit did under global seed `seed`: the mutations it applied, in order. */
async function opsUnder(seed: number, run: (record: (op: unknown) => void) => Promise<void>) {
  fc.configureGlobal({ ...saved, seed });
  const ops: string[] = [];
  await run((op) => ops.push(JSON.stringify(op)));
  return ops;
}

function recording(record: (op: unknown) => void) {
  const harness = memoryHarness();
  return {
    ...harness,
    async setup() {
      const backend = await harness.setup();
      return {
        ...backend,
        apply: (op: MemoryOp) => {
          record(op);
          return backend.apply(op);
        },
      };
    },
  };
}

function recordingTwoWay(record: (op: unknown) => void): TwoWayHarness {
  const harness = memoryTwoWayHarness();
  return {
    ...harness,
    localData(label, previous, info) {
      record([label, info.folder]);
      return harness.localData(label, previous, info);
    },
  };
}

describe("the kits honour fast-check's global seed", () => {
  it.each([
    [
      "checkConformance",
      (r: (op: unknown) => void) => checkConformance(recording(r), { numRuns: 5 }),
    ],
    [
      "checkNotificationFilters",
      (r: (op: unknown) => void) => checkNotificationFilters(recording(r), { numRuns: 5 }),
    ],
    [
      "checkTwoWayConformance",
      (r: (op: unknown) => void) => checkTwoWayConformance(recordingTwoWay(r), { numRuns: 10 }),
    ],
  ])(
    "%s: the same seed draws the same histories, another seed others",
    async (_, run) => {
      const a = await opsUnder(1234, run);
      const b = await opsUnder(1234, run);
      const c = await opsUnder(98765, run);
      expect(a.length).toBeGreaterThan(0);
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
    },
    60_000,
  );
});
