/**
 * `server()`: every selectable mailbox as one scope, over the core's composite (one mailbox
 * cursor per child; `verify` goes to the mailbox the resumed page is in, then to the round's
 * later ones for keys it does not hold). What it adds:
 *
 * - Resume points for a round's first page, which reports each mailbox gone since the cursor:
 *   the next round lists them again, so its answer can't be matched against a delivered set.
 * - A round resumed from a saved state (a crash, `maxChanges`, a batch) is followed, in the same
 *   call, by one more round: the mailboxes it had visited before the interruption may have
 *   changed since, and a complete sync must cover them too.
 */
import { z } from "zod";
import {
  type CompositeCursor,
  type CompositePage,
  compositeSource,
} from "../../src/core/composite.js";
import type { ChangeSource, PageRequest } from "../../src/core/source.js";
import type { ImapConnection } from "./imap-connection.js";
import { listSelectable } from "./imap-hierarchy.js";
import { mailboxSource } from "./imap-mailbox-sync.js";
import { type Followed, followResumedRounds } from "./imap-resume.js";
import { mailboxCursorSchema } from "./schemas.js";

/** The composite's page token (src/core/composite.ts), as a zod object the wrapper can extend. */
const compositePageSchema = z
  .object({ todo: z.array(z.string()).min(1), cp: z.unknown().optional() })
  .strict();

export function serverSource(
  connection: ImapConnection,
): ChangeSource<CompositeCursor, Followed<CompositePage>> {
  const composite = compositeSource({
    name: `${connection.label} server`,
    listChildren: (signal) => connection.withClient(listSelectable, signal),
    child: (path) => mailboxSource({ connection, path, qualified: true }),
  });
  async function firstPage(req: PageRequest<CompositeCursor, CompositePage>) {
    const page = await composite.fetchPage(req);
    const cursor = req.cursor;
    if (cursor === undefined) return page;
    return {
      ...page,
      changes: page.changes.map((change, i) => ({
        ...change,
        position: () => {
          const after = { ...cursor };
          for (const c of page.changes.slice(0, i + 1)) delete after[c.object.sourcekey];
          return { cursor: after };
        },
      })),
    };
  }

  return followResumedRounds(
    {
      ...composite,
      // Stricter than the composite's own: every child cursor must be a mailbox cursor.
      cursorSchema: z.record(z.string(), mailboxCursorSchema),
      identity: () => `imap:${connection.label} server`,
      fetchPage: (req) => (req.page === undefined ? firstPage(req) : composite.fetchPage(req)),
    },
    compositePageSchema,
  );
}
