/**
 * The calendar list (`GET /me/calendars`) as a folder hierarchy. Graph has no delta for it, so
 * the cursor is the list itself (id → changeKey): a round lists every calendar and reports the
 * new and changed ones, then the ones that are gone. Lists are short (a few dozen calendars).
 */
import { z } from "zod";
import { NotFoundError } from "../../src/core/errors.js";
import type { ChangeSource, Page } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { linkString, mapLimited, serverLink } from "./graph-delta.js";
import { DeltaItemSchema, type GraphCalendar, ListPageSchema } from "./schemas.js";

/** id → changeKey of every calendar, as of the end of the last round. */
const SeenSchema = z.record(z.string(), z.string());
type Seen = z.infer<typeof SeenSchema>;

/** A page of a round: the next link and what this round has listed so far. */
export interface CalendarListPage {
  l: string;
  seen: Seen;
}

export function calendarListSource(options: {
  http: HttpClient;
  user: string;
  pageSize: number;
}): ChangeSource<Seen, CalendarListPage> {
  const { http, user } = options;
  return {
    // Calendars a resumed page no longer lists: ask for each (`404` → removed).
    verify: (keys, req) =>
      mapLimited(keys, 4, async (id): Promise<Change> => {
        try {
          const res = await http.request({
            path: `${user}/calendars/${encodeURIComponent(id)}`,
            schema: DeltaItemSchema,
            endpoint: "graph.calendars.get",
            signal: req.signal,
          });
          const item = res.body as GraphCalendar;
          const changeKey = typeof item.changeKey === "string" ? item.changeKey : undefined;
          return {
            kind: "update",
            object: { sourcekey: id, type: "folder", changeKey, data: item },
            created: false,
          };
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error;
          return { kind: "delete", object: { sourcekey: id, type: "folder" }, soft: false };
        }
      }),
    cursorSchema: SeenSchema,
    pageSchema: z.object({ l: linkString(http.baseUrl), seen: SeenSchema }).strict(),
    async fetchPage(req) {
      const res = await http.request({
        path: req.page?.l ?? `${user}/calendars`,
        query: req.page
          ? undefined
          : {
              $top: options.pageSize,
              $select: "id,name,changeKey,color,isDefaultCalendar,canEdit,owner",
            },
        schema: ListPageSchema,
        endpoint: "graph.calendars.list",
        signal: req.signal,
      });
      const before = req.cursor ?? {};
      const seen: Seen = { ...req.page?.seen };
      const changes: Change<GraphCalendar>[] = [];
      for (const item of res.body.value as GraphCalendar[]) {
        const changeKey = typeof item.changeKey === "string" ? item.changeKey : "";
        // Listed twice in one round (the list moved under the paging): report it once.
        if (seen[item.id] !== undefined && seen[item.id] === changeKey) continue;
        seen[item.id] = changeKey;
        if (before[item.id] === changeKey && changeKey !== "") continue;
        changes.push({
          kind: "update",
          object: {
            sourcekey: item.id,
            type: "folder",
            changeKey: changeKey || undefined,
            data: item,
          },
          created: before[item.id] === undefined,
        });
      }
      const next = res.body["@odata.nextLink"];
      const page: Page<Seen, CalendarListPage> = { changes };
      if (next !== undefined) {
        page.nextPage = { l: serverLink("graph.calendars.list", next, http.baseUrl), seen };
        return page;
      }
      for (const id of Object.keys(before)) {
        if (seen[id] === undefined)
          changes.push({ kind: "delete", object: { sourcekey: id, type: "folder" }, soft: false });
      }
      page.newCursor = seen;
      return page;
    },
  };
}
