import { describe, expect, it } from "vitest";
import { EXIT, exitCodeOf, formatError } from "../../src/cli/errors.js";
import {
  ArgumentError,
  AuthError,
  NotFoundError,
  StateError,
  TransientError,
} from "../../src/core/errors.js";

describe("CLI error lines", () => {
  it.each([
    [new ArgumentError("host not found: x"), "bad argument", EXIT.usage],
    [new AuthError("HTTP 401"), "bad credentials", EXIT.auth],
    // A missing mailbox is not an outage: say so.
    [new NotFoundError("INBOX2: no such mailbox"), "not found", EXIT.unreachable],
    [new TransientError("connection refused"), "unreachable", EXIT.unreachable],
    [new StateError("corrupt"), "bad state", EXIT.state],
    [new Error("boom"), "error", EXIT.failure],
  ])("%s → '%s', exit %i", (error, kind, code) => {
    expect(formatError(error, false)).toBe(`deltasync: ${kind}: ${error.message}`);
    expect(exitCodeOf(error)).toBe(code);
  });
});
