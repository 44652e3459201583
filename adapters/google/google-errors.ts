/**
 * Maps Google error responses onto deltasync errors (PROTOCOLS.md §1): expired cursors become
 * `StateInvalidError`, usage limits become retryable `TransientError`s.
 */
import { NotFoundError, StateInvalidError, TransientError } from "../../src/core/errors.js";
import type { HttpErrorResponse } from "../../src/http/index.js";
import { GoogleErrorSchema } from "./schemas.js";

/** The reasons of 403 responses that mean "slow down", not "forbidden". */
const USAGE_LIMIT_REASONS = new Set([
  "rateLimitExceeded",
  "userRateLimitExceeded",
  "quotaExceeded",
  "dailyLimitExceeded",
  "RATE_LIMIT_EXCEEDED",
]);

/** The parts of a Google error body that decide what it means. */
export interface GoogleErrorInfo {
  reasons: string[];
  domains: string[];
  status: string | undefined;
  message: string;
}

/** Reads a Google error body; tolerates anything (an HTML error page, an empty body). */
export function parseGoogleError(text: string): GoogleErrorInfo {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { reasons: [], domains: [], status: undefined, message: "" };
  }
  const parsed = GoogleErrorSchema.safeParse(json);
  if (!parsed.success) return { reasons: [], domains: [], status: undefined, message: "" };
  const e = parsed.data.error;
  const reasons: string[] = [];
  const domains: string[] = [];
  for (const item of e.errors ?? []) {
    if (item.reason) reasons.push(item.reason);
    if (item.domain) domains.push(item.domain);
  }
  for (const d of e.details ?? []) if (d.reason) reasons.push(d.reason);
  return { reasons, domains, status: e.status, message: e.message ?? "" };
}

/** The `classify` hook of the Google HTTP clients. */
export function classifyGoogleError(r: HttpErrorResponse): Error | undefined {
  const info = parseGoogleError(r.text);
  const reason = info.reasons[0];
  const label = `${r.endpoint}: HTTP ${r.status}${reason ? ` ${reason}` : ""}`;
  if (
    r.status === 403 &&
    (info.domains.includes("usageLimits") || info.reasons.some((x) => USAGE_LIMIT_REASONS.has(x)))
  ) {
    return new TransientError(`${label} (usage limits)`, {
      status: r.status,
      retryAfterMs: r.retryAfterMs,
    });
  }
  // People: "Sync token is expired. Clear local cache and retry call without the sync token."
  // The docs give no status; 400 FAILED_PRECONDITION is what servers send, 410 what older docs said.
  if (
    (r.status === 400 || r.status === 410) &&
    (info.reasons.includes("EXPIRED_SYNC_TOKEN") || /sync token is expired/i.test(info.message))
  ) {
    return new StateInvalidError(`${label}: the sync token expired; run a full sync`);
  }
  if (r.status === 410) {
    // `deleted` answers a write on an already deleted event: harmless, never a resync signal.
    if (info.reasons.includes("deleted")) return new NotFoundError(`${label}: already deleted`);
    // Only a list call carries a sync or page token; a 410 on a get (verify) means "gone".
    if (r.method === "GET" && r.endpoint.endsWith(".list")) {
      return new StateInvalidError(`${label}: the sync token is no longer valid; run a full sync`);
    }
    if (r.method === "GET") return new NotFoundError(`${label}: gone`);
  }
  // Gmail answers an expired or too old startHistoryId with 404.
  if (r.status === 404 && r.endpoint === "gmail.history.list") {
    return new StateInvalidError(`${label}: startHistoryId is too old; run a full sync`);
  }
  return undefined;
}
