/**
 * Calendar v3 `calendarList.list` as the hierarchy of the account (PROTOCOLS.md §1.2): calendars
 * added, changed and removed (`deleted: true`), with its own sync token.
 */
import { z } from "zod";
import type { Page, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import {
  followUp,
  mapLimit,
  type PageToken,
  PageTokenSchema,
  pageTokenOf,
  unlessMissing,
  type VerifyingSource,
} from "./google-shared.js";
import {
  CalendarListEntrySchema,
  CalendarListPageSchema,
  type GoogleCalendarListEntry,
} from "./schemas.js";

export const TokenCursorSchema = z.object({ syncToken: z.string().min(1) });
export type TokenCursor = z.infer<typeof TokenCursorSchema>;

/** The page fetcher of the calendar list. `maxResults` is capped at 250 by Google. */
export function calendarListSource(options: {
  http: HttpClient;
  pageSize: number;
  account: (signal: AbortSignal) => Promise<string>;
}): VerifyingSource<TokenCursor, PageToken> {
  const { http } = options;
  const pageSize = Math.min(options.pageSize, 250);
  return {
    cursorSchema: TokenCursorSchema,
    pageSchema: PageTokenSchema,
    async identity(signal) {
      return `${await options.account(signal)} calendarList`;
    },
    /** `calendarList.get`: a calendar removed from the list is 404. */
    async verify(keys, req) {
      return mapLimit(keys, 4, async (id) => {
        const res = await unlessMissing(
          http.request({
            path: `users/me/calendarList/${encodeURIComponent(id)}`,
            schema: CalendarListEntrySchema,
            endpoint: "calendar.calendarList.get",
            signal: req.signal,
          }),
        );
        return calendarChange(res?.body ?? { id, deleted: true }, false);
      });
    },
    async fetchPage(req: PageRequest<TokenCursor, PageToken>) {
      // minAccessRole / showDeleted=false / showHidden=false are forbidden with a syncToken.
      const res = await http.request({
        path: "users/me/calendarList",
        query: {
          maxResults: pageSize,
          syncToken: req.cursor?.syncToken,
          // Hidden calendars come with every delta; list them in a full sync too, or the two differ.
          showHidden: req.cursor ? undefined : true,
          pageToken: pageTokenOf(req.page),
        },
        schema: CalendarListPageSchema,
        endpoint: "calendar.calendarList.list",
        signal: req.signal,
      });
      const changes = res.body.items.map((entry) =>
        calendarChange(entry, req.cursor === undefined),
      );
      const page: Page<TokenCursor, PageToken> = { changes };
      if (res.body.nextPageToken !== undefined) page.nextPage = res.body.nextPageToken;
      else if (res.body.nextSyncToken !== undefined) {
        page.newCursor = { syncToken: res.body.nextSyncToken };
        page.nextPage = followUp(req.page);
      }
      return page;
    },
  };
}

function calendarChange(
  entry: GoogleCalendarListEntry,
  created: boolean,
): Change<GoogleCalendarListEntry> {
  if (entry.deleted === true) {
    return { kind: "delete", object: { sourcekey: entry.id, type: "folder" }, soft: false };
  }
  return {
    kind: "update",
    object: { sourcekey: entry.id, type: "folder", changeKey: entry.etag, data: entry },
    created,
  };
}
