/**
 * The conformance kit against the Google emulator, in process: long random histories over
 * pre-seeded calendars, contacts and a mailbox, with crashes and faults at batch boundaries,
 * writers inside importer callbacks, fresh processes, one-shot 410s and 5xx, foreign and
 * ahead-of-head states (see src/testing/conformance.ts).
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { checkConformance } from "../../src/testing/index.js";
import { GoogleEmulator } from "./emulator.js";
import { type Family, googleHarness } from "./harness.js";

let emulator: GoogleEmulator;
let foreign: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
  foreign = await GoogleEmulator.start({ emailAddress: "other@example.com" });
});
afterAll(async () => {
  await emulator.close();
  await foreign.close();
});

/** Scales every run count (GOOGLE_CONFORMANCE_SCALE=5 for a long local run). */
const scale = Number(process.env.GOOGLE_CONFORMANCE_SCALE ?? 1);
const n = (runs: number) => Math.max(1, Math.round(runs * scale));

const cases: [string, Family[] | undefined, number, { chaosRate?: number }][] = [
  ["calendar events (singleEvents false and true)", ["calendar"], 400, {}],
  ["calendar list and contacts", ["calendarList", "contacts"], 200, {}],
  ["Gmail history", ["gmail"], 250, {}],
  ["every scope at once", undefined, 100, {}],
  [
    "every scope, with random 5xx, 429 + Retry-After, 403 usageLimits and connection resets",
    undefined,
    50,
    { chaosRate: 0.1 },
  ],
];

describe(`google adapter conformance (emulator, ${cases.reduce((t, c) => t + n(c[2]), 0)} histories)`, () => {
  for (const [what, families, runs, extra] of cases) {
    it(`${what}: ${n(runs)} histories`, async () => {
      await checkConformance(googleHarness(emulator, { families, foreign, ...extra }), {
        numRuns: n(runs),
      });
    }, 600_000);
  }
});
