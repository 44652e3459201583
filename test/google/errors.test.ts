import { describe, expect, it } from "vitest";
import { classifyGoogleError } from "../../adapters/google/index.js";
import { NotFoundError, StateInvalidError, TransientError } from "../../src/core/errors.js";
import type { HttpErrorResponse } from "../../src/http/index.js";
import { googleError } from "./emulator.js";

function res(
  status: number,
  body: unknown,
  extra: Partial<HttpErrorResponse> = {},
): HttpErrorResponse {
  return {
    status,
    method: "GET",
    endpoint: "calendar.events.list",
    headers: {},
    text: typeof body === "string" ? body : JSON.stringify(body),
    retryAfterMs: undefined,
    ...extra,
  };
}

describe("classifyGoogleError", () => {
  it("maps every 403 usage-limit reason to a retryable TransientError", () => {
    for (const reason of [
      "rateLimitExceeded",
      "userRateLimitExceeded",
      "quotaExceeded",
      "dailyLimitExceeded",
    ]) {
      const err = classifyGoogleError(
        res(403, googleError(403, reason, "slow down", "usageLimits"), { retryAfterMs: 5 }),
      );
      expect(err, reason).toBeInstanceOf(TransientError);
      expect((err as TransientError).retryAfterMs).toBe(5);
    }
    // A 403 in the usageLimits domain with another reason is still a limit.
    expect(
      classifyGoogleError(res(403, googleError(403, "other", "x", "usageLimits"))),
    ).toBeInstanceOf(TransientError);
    // A plain 403 is left to the default mapping (AuthError).
    expect(classifyGoogleError(res(403, googleError(403, "forbidden", "no")))).toBeUndefined();
  });

  it("maps 410 fullSyncRequired, updatedMinTooLongAgo and a bare 410 on a list to StateInvalidError", () => {
    expect(
      classifyGoogleError(
        res(410, googleError(410, "fullSyncRequired", "x", "calendar", "syncToken")),
      ),
    ).toBeInstanceOf(StateInvalidError);
    expect(
      classifyGoogleError(res(410, googleError(410, "updatedMinTooLongAgo", "x"))),
    ).toBeInstanceOf(StateInvalidError);
    expect(classifyGoogleError(res(410, "<html>gone</html>"))).toBeInstanceOf(StateInvalidError);
  });

  it("maps a 410 on a get (verify of a purged event) to NotFoundError, never a resync", () => {
    const err = classifyGoogleError(
      res(410, googleError(410, "fullSyncRequired", "x"), { endpoint: "calendar.events.get" }),
    );
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).not.toBeInstanceOf(StateInvalidError);
  });

  it("never treats the 410 `deleted` reason as a resync", () => {
    const onWrite = classifyGoogleError(
      res(410, googleError(410, "deleted", "Resource has been deleted"), { method: "DELETE" }),
    );
    expect(onWrite).toBeInstanceOf(NotFoundError);
    expect(classifyGoogleError(res(410, googleError(410, "deleted", "x")))).toBeInstanceOf(
      NotFoundError,
    );
    expect(
      classifyGoogleError(res(410, googleError(410, "fullSyncRequired", "x"), { method: "POST" })),
    ).toBeUndefined();
  });

  it("maps People EXPIRED_SYNC_TOKEN (400 FAILED_PRECONDITION, 410, or the message) to StateInvalidError", () => {
    const details = (status: number) => ({
      error: {
        code: status,
        status: "FAILED_PRECONDITION",
        message: "x",
        details: [
          { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "EXPIRED_SYNC_TOKEN" },
        ],
      },
    });
    expect(
      classifyGoogleError(res(400, details(400), { endpoint: "people.connections.list" })),
    ).toBeInstanceOf(StateInvalidError);
    expect(
      classifyGoogleError(res(410, details(410), { endpoint: "people.connections.list" })),
    ).toBeInstanceOf(StateInvalidError);
    const byMessage = {
      error: {
        code: 400,
        message: "Sync token is expired. Clear local cache and retry call without the sync token.",
      },
    };
    expect(classifyGoogleError(res(400, byMessage))).toBeInstanceOf(StateInvalidError);
    expect(
      classifyGoogleError(
        res(400, googleError(400, "badRequest", "personFields mask is required")),
      ),
    ).toBeUndefined();
  });

  it("maps a Gmail history 404 to StateInvalidError, other 404s to the default", () => {
    expect(
      classifyGoogleError(
        res(404, googleError(404, "notFound", "x"), { endpoint: "gmail.history.list" }),
      ),
    ).toBeInstanceOf(StateInvalidError);
    expect(
      classifyGoogleError(
        res(404, googleError(404, "notFound", "x"), { endpoint: "gmail.messages.get" }),
      ),
    ).toBeUndefined();
  });

  it("tolerates bodies that are not Google errors", () => {
    expect(classifyGoogleError(res(500, "oops"))).toBeUndefined();
    expect(classifyGoogleError(res(403, { error: "nope" }))).toBeUndefined();
  });
});
