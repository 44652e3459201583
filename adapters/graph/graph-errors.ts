/**
 * Maps Graph error responses onto deltasync errors (PROTOCOLS.md §2.3, §2.4): the 410 family and
 * `syncStateInvalid` become `StateInvalidError`, throttling a retryable `TransientError`.
 */
import { NotFoundError, StateInvalidError, TransientError } from "../../src/core/errors.js";
import { type HttpErrorResponse, headerValue } from "../../src/http/index.js";
import { GraphErrorSchema } from "./schemas.js";

/** Codes that mean "this delta or skip token is no longer usable: start a full sync". */
const RESYNC_CODES = new Set(["syncstatenotfound", "resyncrequired", "syncstateinvalid"]);

/** Codes Outlook uses for throttling (sometimes with a 403 or 400 status). */
const THROTTLE_CODES = new Set(["toomanyrequests", "applicationthrottled", "activitylimitreached"]);

/** The code of a Graph error body (`error.code`, or the inner code), lower-cased; "" if none. */
export function graphErrorCode(text: string): { code: string; inner: string; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { code: "", inner: "", message: "" };
  }
  const parsed = GraphErrorSchema.safeParse(json);
  if (!parsed.success) return { code: "", inner: "", message: "" };
  const e = parsed.data.error;
  return {
    code: (e.code ?? "").toLowerCase(),
    inner: (e.innerError?.code ?? "").toLowerCase(),
    message: e.message ?? "",
  };
}

/** The `classify` hook of the Graph HTTP client. */
export function classifyGraphError(r: HttpErrorResponse): Error | undefined {
  const { code, inner } = graphErrorCode(r.text);
  const label = `${r.endpoint}: HTTP ${r.status}${code ? ` ${code}` : ""}`;
  const resync = RESYNC_CODES.has(code) || RESYNC_CODES.has(inner);
  // "Synchronization reset": 410 with a Location to restart from (an empty $deltatoken). The
  // restart is a full sync, which is what StateInvalidError makes the orchestrator do.
  if (r.status === 410) {
    const location = headerValue(r.headers.location);
    if (location) return new StateInvalidError(`${label}: synchronization reset; run a full sync`);
    if (r.method === "GET") return new StateInvalidError(`${label}: the delta token expired`);
    return new NotFoundError(`${label}: gone`);
  }
  // syncStateInvalid has been seen with 400: a malformed token or one of another request.
  if (resync && r.status >= 400 && r.status < 500)
    return new StateInvalidError(`${label}: the delta token is not valid; run a full sync`);
  if (THROTTLE_CODES.has(code) && r.status !== 429 && r.status < 500) {
    return new TransientError(`${label} (throttled)`, {
      status: r.status,
      retryAfterMs: r.retryAfterMs,
    });
  }
  return undefined;
}
