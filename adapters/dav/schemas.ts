/**
 * Zod schemas of what the dav adapter writes into states.
 */
import { z } from "zod";

/** Where the cursor belongs: the collection's href and kind, so a resumed sync needs no lookup. */
const where = {
  h: z.string().optional(),
  k: z.enum(["calendar", "addressbook"]).optional(),
};

/**
 * RFC 6578 cursor: the sync token (`""` before the first answer). `d` is what older versions
 * kept after a `maxChanges` stop (members already imported); it is read and ignored: the engine's
 * delivered set and `verify` make such resumes exact now.
 */
export const syncCursorSchema = z
  .object({
    ...where,
    m: z.literal("sync"),
    t: z.string(),
    d: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/** Fallback cursor: the collection's getctag (null: list again) and its href → etag listing. */
export const ctagCursorSchema = z
  .object({
    ...where,
    m: z.literal("ctag"),
    g: z.string().nullable(),
    e: z.record(z.string(), z.string()),
  })
  .strict();

export const itemCursorSchema = z.discriminatedUnion("m", [syncCursorSchema, ctagCursorSchema]);

/** The page token after a 507-truncated answer: the partial token to continue from. */
export const itemPageSchema = z.object({ t: z.string() }).strict();

export type SyncCursor = z.infer<typeof syncCursorSchema>;
export type CtagCursor = z.infer<typeof ctagCursorSchema>;
export type ItemCursor = z.infer<typeof itemCursorSchema>;
export type ItemPage = z.infer<typeof itemPageSchema>;
