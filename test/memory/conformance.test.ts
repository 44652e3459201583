import { describe, it } from "vitest";
import {
  checkConformance,
  checkNotificationFilters,
  checkStateErrors,
} from "../../src/testing/index.js";
import { memoryHarness } from "./harness.js";

const RUNS = Number(process.env.CONFORMANCE_RUNS ?? 1000);

describe("memory adapter passes the conformance kit", () => {
  it(`${RUNS} random histories over six scopes`, async () => {
    await checkConformance(memoryHarness(), { numRuns: RUNS });
  }, 600_000);

  it("with page size 1 and automatic journal retention", async () => {
    await checkConformance(memoryHarness({ pageSize: 1, retention: 50 }), {
      numRuns: 200,
      steps: [
        "mutate",
        "sync",
        "full",
        "limited",
        "checkpoint",
        "abort",
        "fail",
        "concurrent",
        "orchestrated",
      ],
    });
  }, 300_000);

  it("with the engine's read-ahead (pages kept across maxChanges rounds)", async () => {
    await checkConformance(memoryHarness({ readAhead: true, pageSize: 2 }), {
      numRuns: Math.ceil(RUNS / 4),
    });
  }, 300_000);

  it("notification filters deliver exactly the matching events", async () => {
    await checkNotificationFilters(memoryHarness(), { numRuns: 200 });
  });

  it("rejects every corrupt or foreign state with StateError", async () => {
    const backend = await memoryHarness().setup();
    for (const scope of backend.scopes) await checkStateErrors(scope.syncable);
  });
});
