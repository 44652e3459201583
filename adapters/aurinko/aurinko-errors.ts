/**
 * Maps Aurinko error responses onto deltasync errors (PROTOCOLS.md §7): an expired or refused
 * delta/page token is a `StateInvalidError` (reset + full sync), never a record or a success.
 * 429/408/5xx fall through to the shared client's default (`TransientError`, `Retry-After`).
 */
import { StateInvalidError } from "../../src/core/errors.js";
import type { HttpErrorResponse } from "../../src/http/index.js";
import { ErrorBodySchema } from "./schemas.js";

/** The endpoint names of the two streams (the only requests that carry a token). */
export const STREAM_ENDPOINTS = new Set(["aurinko.sync.updated", "aurinko.sync.deleted"]);

/** `{code, message}` of an error body; tolerates anything. */
export function parseAurinkoError(text: string): { code?: string; message?: string } {
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** The `classify` hook of the Aurinko HTTP client. */
export function classifyAurinkoError(r: HttpErrorResponse): Error | undefined {
  if (!STREAM_ENDPOINTS.has(r.endpoint)) return undefined;
  const { code, message } = parseAurinkoError(r.text);
  const label = `${r.endpoint}: HTTP ${r.status}${code ? ` ${code}` : ""}${message ? ` (${message})` : ""}`;
  // 410 syncToken.expired on every sync/updated|deleted; the Java client also treats 400
  // token.notValid ("Page token is invalid") as a bad token.
  if (r.status === 410) return new StateInvalidError(`${label}: the delta token expired`);
  if (r.status === 400 && code === "token.notValid") {
    return new StateInvalidError(`${label}: the token is not valid`);
  }
  return undefined;
}
