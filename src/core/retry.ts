/**
 * Retry policy for transient failures: exponential backoff with full jitter, honouring the
 * server's `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date).
 */
import { isTransient, TransientError } from "./errors.js";

export interface RetryPolicy {
  /** Retries after the first attempt before failing with the last error. Default 5. */
  retries?: number;
  /** The first backoff step (ms). Default 250. */
  minDelayMs?: number;
  /** The cap on one wait (ms), `Retry-After` included. Default 30 000. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Which errors to retry. Default `isTransient` (TransientError, connection resets, timeouts). */
  retryable?: (error: unknown) => boolean;
  /** Source of randomness for jitter, in [0, 1). Default `Math.random` (tests pin it). */
  random?: () => number;
}

export type ResolvedRetryPolicy = Required<RetryPolicy>;

export function resolveRetryPolicy(policy: RetryPolicy | false | undefined): ResolvedRetryPolicy {
  const p = policy === false ? { retries: 0 } : (policy ?? {});
  return {
    retries: p.retries ?? 5,
    minDelayMs: p.minDelayMs ?? 250,
    maxDelayMs: p.maxDelayMs ?? 30_000,
    factor: p.factor ?? 2,
    retryable: p.retryable ?? isTransient,
    random: p.random ?? Math.random,
  };
}

/**
 * The wait before retry number `attempt` (1-based): the server's `Retry-After` when the error
 * carries one, otherwise a random delay in [step/2, step] with step = min·factor^(attempt-1).
 */
export function retryDelay(attempt: number, error: unknown, policy: ResolvedRetryPolicy): number {
  const hinted = error instanceof TransientError ? error.retryAfterMs : undefined;
  if (hinted !== undefined && Number.isFinite(hinted) && hinted >= 0) {
    return Math.min(hinted, policy.maxDelayMs);
  }
  const step = Math.min(policy.maxDelayMs, policy.minDelayMs * policy.factor ** (attempt - 1));
  return Math.round(step / 2 + (policy.random() * step) / 2);
}

/**
 * Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`). Milliseconds from `now`, never negative; undefined when
 * absent or unparsable.
 * @example parseRetryAfter("2") // 2000
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP-date starts with the day name (RFC 9110 §5.6.7); this keeps "-5" from parsing as a year.
  if (!/^[A-Za-z]{3},/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
