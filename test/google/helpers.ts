/**
 * Shared setup of the targeted Google tests: an emulator and accounts pointed at it.
 */
import {
  createGoogleAccount,
  type GoogleAccount,
  type GoogleOptions,
} from "../../adapters/google/index.js";
import { type Recorder, recorder as record } from "../recorder.js";
import type { GoogleEmulator } from "./emulator.js";

/** An account on the emulator with fast retries. */
export function account(
  emulator: GoogleEmulator,
  extra: Partial<GoogleOptions> = {},
): GoogleAccount {
  return createGoogleAccount({
    baseUrl: emulator.url,
    accessToken: "test-token",
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 50 },
    ...extra,
  });
}

/** An importer that records into a map (and a log of calls). */
export function recorder(): Recorder {
  return record();
}

/** The query strings of the requests to `path` so far. */
export function queries(emulator: GoogleEmulator, path: RegExp): URLSearchParams[] {
  return emulator.requests.filter((r) => path.test(r.path)).map((r) => r.query);
}
