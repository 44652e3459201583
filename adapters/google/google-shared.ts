/**
 * Small pieces every Google scope shares: bounded parallel lookups (verify, Gmail's
 * `messages.get`) and the account a token belongs to (the identity written into states).
 */
import { NotFoundError } from "../../src/core/errors.js";

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<I, O>(
  items: readonly I[],
  limit: number,
  fn: (item: I) => Promise<O>,
): Promise<O[]> {
  const out = new Array<O>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as I);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Resolves with `undefined` when the object does not exist (404, or 410 on a get). */
export async function unlessMissing<T>(lookup: Promise<T>): Promise<T | undefined> {
  try {
    return await lookup;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/**
 * Which account the token belongs to: `fixed` when the caller named it, otherwise asked once
 * (and kept; a failed lookup is asked again next time).
 */
export function accountOf(
  fixed: string | undefined,
  ask: (signal: AbortSignal) => Promise<string>,
): (signal: AbortSignal) => Promise<string> {
  if (fixed !== undefined) return async () => fixed;
  let known: Promise<string> | undefined;
  return (signal) => {
    known ??= ask(signal).catch((error: unknown) => {
      known = undefined;
      throw error;
    });
    return known;
  };
}
