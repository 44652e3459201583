/**
 * A round resumed from a saved state (after a crash, a `maxChanges` stop, a `runSync` batch)
 * is followed, in the same call, by one more round. IMAP cursors move at a round's start (the
 * HIGHESTMODSEQ of its first SELECT; a server-wide round visits mailboxes one after the other),
 * so what changed between the interruption and the resume in the part of the round already
 * delivered is only seen by the next round: without it, a complete sync would leave the
 * importer behind the server until the next call.
 */
import { z } from "zod";
import type { ChangeSource, Page, PageRequest } from "../../src/core/source.js";

/**
 * The wrapped source's page, marked `r` inside a resumed round and `f` inside the round that
 * follows one (never followed itself); `{ again: true }` starts that round.
 */
export type Followed<P> = (P & { r?: true; f?: true }) | { again: true };

/**
 * `source` with resumed rounds followed by one more. A round counts as resumed when a page
 * request carries a cursor this wrapper did not hand to the engine itself (it was read from a
 * state); with `always`, every round of more than one page counts (for a source with read-ahead,
 * whose kept pages reach the next call without passing through here). `pageSchema` is the
 * source's own (a zod object).
 */
export function followResumedRounds<C extends object, P extends object>(
  source: ChangeSource<C, P>,
  pageSchema: z.ZodObject,
  always = false,
): ChangeSource<C, Followed<P>> {
  const issued = new WeakSet<object>();
  const unwrap = (req: PageRequest<C, Followed<P>>): PageRequest<C, P> => {
    const page = req.page;
    if (page === undefined || "again" in page) return { ...req, page: undefined };
    const { r: _r, f: _f, ...rest } = page as P & { r?: true; f?: true };
    return { ...req, page: rest as P };
  };
  const wrapped: ChangeSource<C, Followed<P>> = {
    ...(source as ChangeSource<C, unknown>),
    pageSchema: z.union([
      pageSchema.extend({ r: z.literal(true).optional(), f: z.literal(true).optional() }),
      z.object({ again: z.literal(true) }).strict(),
    ]) as unknown as z.ZodType<Followed<P>>,
    async fetchPage(req) {
      const page = (await source.fetchPage(unwrap(req))) as Page<C, Followed<P>>;
      const marks = (req.page ?? {}) as { r?: true; f?: true; again?: true };
      if ((marks.again || marks.f) && page.nextPage !== undefined) {
        page.nextPage = { ...(page.nextPage as P), f: true };
      }
      const resumed =
        req.page !== undefined &&
        !marks.again &&
        !marks.f &&
        (always || marks.r === true || req.cursor === undefined || !issued.has(req.cursor));
      if (resumed) {
        page.nextPage =
          page.nextPage === undefined ? { again: true } : { ...(page.nextPage as P), r: true };
      }
      const next = page.newCursor ?? req.cursor;
      if (next !== undefined) issued.add(next);
      return page;
    },
  };
  if (source.verify) {
    const verify = source.verify.bind(source);
    wrapped.verify = (keys, req) => verify(keys, unwrap(req));
  }
  return wrapped;
}
