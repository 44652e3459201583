/**
 * Small pieces every Google scope shares: bounded parallel lookups (verify, Gmail's
 * `messages.get`), the account a token belongs to (the identity written into states) and the
 * page token of string-token lists with their follow-up delta.
 */
import { z } from "zod";
import { NotFoundError } from "../../src/core/errors.js";
import type { ChangeSource, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";

/** A source with the resume contract's members (verify, identity) always present. */
export type VerifyingSource<C, P> = ChangeSource<C, P> & {
  verify(keys: string[], request: PageRequest<C, P>): Promise<Change[]>;
  identity(signal: AbortSignal): Promise<string>;
};

/**
 * A page of the round: Google's page token, or `{ delta: true }` for the first page of a delta
 * from the cursor (the follow-up after a round's last page reached by a page token).
 */
export const PageTokenSchema = z.union([
  z.string().min(1),
  z.object({ delta: z.literal(true) }).strict(),
]);
export type PageToken = z.infer<typeof PageTokenSchema>;

/** `pageToken` of a list call for `page` (none for a follow-up delta). */
export function pageTokenOf(page: PageToken | undefined): string | undefined {
  return typeof page === "string" ? page : undefined;
}

/**
 * The page after the last page of a round: pages reached by a page token list the snapshot
 * their round started from (possibly a round resumed much later), so what changed since comes
 * with one more delta; a sync that completes covers at least everything before it started.
 */
export function followUp(page: PageToken | undefined): PageToken | undefined {
  return typeof page === "string" ? { delta: true } : undefined;
}

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
 * (and kept; a failed lookup is asked again next time). The lookup is shared, so it is not tied
 * to one caller's signal: each caller stops waiting when its own signal aborts.
 */
export function accountOf(
  fixed: string | undefined,
  ask: () => Promise<string>,
): (signal: AbortSignal) => Promise<string> {
  if (fixed !== undefined) return async () => fixed;
  let known: Promise<string> | undefined;
  return (signal) => {
    signal.throwIfAborted();
    const lookup = (known ??= ask().catch((error: unknown) => {
      known = undefined;
      throw error;
    }));
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      lookup.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  };
}
