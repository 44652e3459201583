/**
 * Turns any error into one credential-free line and an exit code.
 */
import {
  ArgumentError,
  AuthError,
  ConflictError,
  isTransient,
  MassChangeError,
  NotFoundError,
  NotSupportedError,
  PushBlockedError,
  StateError,
  StateInvalidError,
} from "../core/errors.js";
import { describeError, redact } from "../orchestrator/redact.js";

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  auth: 3,
  unreachable: 4,
  state: 5,
  /**
   * Paused, waiting for a decision: a conflict (`push`, until `conflicts resolve`) or a mass
   * delete (`sync`/`push`, until rerun with `--confirm-mass-change`).
   */
  conflict: 6,
  /** 128 + SIGINT, what shells expect after Ctrl-C. */
  interrupted: 130,
  /** 128 + SIGTERM. */
  terminated: 143,
} as const;

export function exitCodeOf(error: unknown): number {
  if (error instanceof PushBlockedError) {
    // Blocked by bad credentials or an unreachable server: say so; anything else is a failure.
    const code = exitCodeOf(error.cause);
    return code === EXIT.auth || code === EXIT.unreachable ? code : EXIT.failure;
  }
  if (error instanceof ArgumentError || error instanceof NotSupportedError) return EXIT.usage;
  if (error instanceof MassChangeError) return EXIT.conflict;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code.startsWith("commander.")) return EXIT.usage;
  if (error instanceof AuthError) return EXIT.auth;
  if (
    error instanceof StateError ||
    error instanceof StateInvalidError ||
    error instanceof ConflictError
  )
    return EXIT.state;
  if (error instanceof NotFoundError || isTransient(error)) return EXIT.unreachable;
  return EXIT.failure;
}

/** `deltasync: <what>: <message>`; the stack (redacted) only when verbose. */
export function formatError(error: unknown, verbose: boolean): string {
  const e = error as { message?: unknown } | null;
  let kind = "error";
  if (error instanceof AuthError) kind = "bad credentials";
  else if (error instanceof StateError) kind = "bad state";
  else if (error instanceof NotFoundError) kind = "not found";
  else if (isTransient(error)) kind = "unreachable";
  else if (error instanceof ArgumentError) kind = "bad argument";
  else if (error instanceof PushBlockedError) kind = "push blocked";
  else if (error instanceof MassChangeError) kind = "paused";
  const message =
    error instanceof MassChangeError
      ? massChangeHint(error)
      : e && typeof e.message === "string"
        ? redact(e.message.replace(/\s*\n\s*/g, " "))
        : describeError(error);
  const line = `deltasync: ${kind}: ${message}`;
  if (!verbose) return line;
  const stack = error instanceof Error && error.stack ? redact(error.stack) : "";
  return `${line}\n${stack}`;
}

/** The library's message names the API option; the CLI user needs the flag. */
function massChangeHint(error: MassChangeError): string {
  const what =
    error.direction === "pull"
      ? "the server's deletes would remove them from the mirror"
      : "the mirror's pending deletes would remove them from the server";
  return `${error.direction} of ${error.pair} would delete ${error.deletes} of ${error.size} objects (${what}); nothing was deleted. If that is intended, run the same \`deltasync ${error.direction === "pull" ? "sync" : "push"}\` again with --confirm-mass-change`;
}
