/**
 * Shared setup of the targeted Graph tests: accounts on the emulator, a recording importer.
 */
import {
  createGraphAccount,
  type GraphAccount,
  type GraphOptions,
} from "../../adapters/graph/index.js";
import { type Recorder, recorder as record } from "../recorder.js";
import type { GraphEmulator } from "./emulator.js";

/** An account on the emulator with fast retries. */
export function account(emulator: GraphEmulator, extra: Partial<GraphOptions> = {}): GraphAccount {
  return createGraphAccount({
    baseUrl: emulator.baseUrl,
    accessToken: "test-token",
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 50 },
    ...extra,
  });
}

/** An importer that records into a map (and a log of calls). */
export function recorder(): Recorder {
  return record({ moved: true });
}
