/**
 * Catching up after a resumed round. A round's pages may be read as of its first request (a
 * snapshot behind the skip token; the composite visits each folder once; the calendar list pages
 * by offset). A round resumed from a stored page token (after a crash, `maxChanges`, a restart)
 * could then end without what changed between the interruption and the resume, although it
 * reports itself complete. So when a resumed round ends, one more round is chained at once from
 * the cursor it reached (and again if that one is interrupted and resumed in turn).
 *
 * A round counts as resumed when it fetches a page token this source did not hand out, or one
 * already fetched once (the engine reads page N+1 ahead as soon as page N arrives, so a crash
 * while page N is imported leaves N+1 fetched). Rounds that ran through once pay nothing.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { ChangeSource, Page, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";

/** The wrapped page token: the source's own (`p`) and the round's flags. */
export interface ResumePage<P> {
  /** The inner page; absent on the first page of a chained catch-up round. */
  p?: P;
  /** The round was resumed: chain a catch-up round when it ends. */
  r?: true;
  /** Makes the first page of a catch-up round unique. */
  n?: string;
  /** Catch-up rounds chained so far (a bound, so an ever-interrupted sync still ends). */
  k?: number;
}

/** Chained catch-up rounds after one resumed round, at most. */
const MAX_CATCH_UPS = 3;

/** How many handed-out page tokens are remembered. */
const MAX_TRACKED = 1000;

/** Wraps `source` so a resumed round is followed by a catch-up round. */
export function catchUpAfterResume<C, P>(
  source: ChangeSource<C, P>,
): ChangeSource<C, ResumePage<P>> {
  // Page tokens handed out → times fetched.
  const issued = new Map<string, number>();
  const inner = source.pageSchema ?? z.unknown();
  const unwrap = (req: PageRequest<C, ResumePage<P>>): PageRequest<C, P> => ({
    ...req,
    page: req.page?.p,
  });
  const resumedAt = (page: ResumePage<P>): boolean => {
    const key = JSON.stringify(page);
    const fetched = issued.get(key);
    if (fetched !== undefined) issued.set(key, fetched + 1);
    return page.r === true || fetched === undefined || fetched > 0;
  };
  return {
    cursorSchema: source.cursorSchema,
    pageSchema: z
      .object({
        p: inner.optional(),
        r: z.literal(true).optional(),
        n: z.string().optional(),
        k: z.number().int().positive().optional(),
      })
      .strict() as unknown as z.ZodType<ResumePage<P>>,
    readAhead: source.readAhead,
    identity: source.identity?.bind(source),
    verify: source.verify
      ? (keys, req) => (source.verify as NonNullable<typeof source.verify>)(keys, unwrap(req))
      : undefined,
    async fetchPage(req) {
      const resumed = req.page !== undefined && resumedAt(req.page);
      const k = req.page?.k;
      const result = await source.fetchPage(unwrap(req));
      const out: Page<C, ResumePage<P>> = { changes: result.changes, newCursor: result.newCursor };
      if (result.nextPage !== undefined) {
        out.nextPage = { p: result.nextPage };
        if (resumed) out.nextPage.r = true;
        if (k !== undefined) out.nextPage.k = k;
      } else if (resumed && (k ?? 0) < MAX_CATCH_UPS) {
        out.nextPage = { n: randomUUID(), k: (k ?? 0) + 1 };
      }
      if (out.nextPage !== undefined) {
        if (issued.size >= MAX_TRACKED) issued.delete(issued.keys().next().value as string);
        issued.set(JSON.stringify(out.nextPage), 0);
      }
      return out;
    },
  };
}

/**
 * A composite child whose listing starts from scratch (a new folder, a reset one, or every
 * folder of a full sync) first reports its folder deleted, in the same page as its first items.
 * A crash in that page, then objects deleted before the resume, would otherwise stay in the
 * importer's copy: the resumed listing is a new one, a Graph listing has no tombstones, and the
 * importer saw them in this full sync. Importers cascade the folder delete, then get every live
 * object again; a resume inside the page skips both as already applied.
 */
export function clearBeforeListing<C, P>(
  key: string,
  source: ChangeSource<C, P>,
): ChangeSource<C, P> {
  return {
    ...source,
    async fetchPage(req) {
      const page = await source.fetchPage(req);
      if (req.cursor !== undefined || req.page !== undefined) return page;
      const clear: Change = {
        kind: "delete",
        object: { sourcekey: key, type: "folder" },
        soft: false,
      };
      return { ...page, changes: [clear, ...page.changes] };
    },
  };
}
