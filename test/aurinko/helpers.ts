/**
 * Shared setup of the targeted Aurinko tests: accounts on the emulator and a recording importer.
 */
import {
  type AurinkoAccount,
  type AurinkoOptions,
  createAurinkoAccount,
} from "../../adapters/aurinko/index.js";
import { type Recorder, recorder as record } from "../recorder.js";
import type { AurinkoEmulator } from "./emulator.js";

/** An account on the emulator with fast retries and no pause between `ready: false` answers. */
export function account(
  emulator: AurinkoEmulator,
  token = "alice",
  extra: Partial<AurinkoOptions> = {},
): AurinkoAccount {
  return createAurinkoAccount({
    baseUrl: emulator.url,
    accessToken: token,
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 50 },
    ready: { minDelayMs: 1, maxDelayMs: 4, timeoutMs: 1000 },
    ...extra,
  });
}

/** An importer that records into a map (and a log of calls). */
export function recorder(): Recorder {
  return record();
}

/** A message as the model stores it. */
export function message(subject: string, unread = true): Record<string, unknown> {
  return {
    subject,
    threadId: `t-${subject}`,
    folderId: "inbox",
    sysLabels: unread ? ["unread"] : [],
    receivedAt: new Date().toISOString(),
  };
}

/** The requests to a path so far, as `METHOD path?query`. */
export function calls(emulator: AurinkoEmulator, path?: RegExp): string[] {
  return emulator.requests
    .filter((r) => !path || path.test(r.path))
    .map((r) => `${r.method} ${r.path.replace(/^\/v1\//, "")}${r.query.size ? `?${r.query}` : ""}`);
}
