/**
 * Calendar v3 `events.list` as a page fetcher (PROTOCOLS.md §1.1): a full sync bounded by the
 * window, then `syncToken` rounds that page with `pageToken` under the same token.
 */
import { z } from "zod";
import { StateError } from "../../src/core/errors.js";
import type { Page, PageRequest } from "../../src/core/source.js";
import type { Change, SyncWindow } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { mapLimit, unlessMissing, type VerifyingSource } from "./google-shared.js";
import { EventSchema, EventsPageSchema, type GoogleEvent } from "./schemas.js";

/** The cursor of a calendar: Google's sync token and the `singleEvents` it was made with. */
export const CalendarCursorSchema = z.object({
  syncToken: z.string().min(1),
  singleEvents: z.boolean(),
});
export type CalendarCursor = z.infer<typeof CalendarCursorSchema>;

/**
 * A page of the current round: Google's page token (and `singleEvents`, for full-sync resumes).
 * Without a page token: the first page of a delta from the cursor (the follow-up, see below).
 */
export const CalendarPageSchema = z.object({
  pageToken: z.string().min(1).optional(),
  singleEvents: z.boolean(),
});
export type CalendarPage = z.infer<typeof CalendarPageSchema>;

export interface EventsSourceOptions {
  http: HttpClient;
  calendarId: string;
  /** `maxResults`; Google's default and ours is 250, its cap 2500. */
  pageSize: number;
  /** Expand recurring events into instances; kept in the state (Google requires the same value). */
  singleEvents: boolean;
  /** The account the token belongs to (part of the identity written into states). */
  account: (signal: AbortSignal) => Promise<string>;
}

/** Parallel `events.get` calls of one `verify` (well under Google's per-user rate). */
const VERIFY_CONCURRENCY = 4;

/** The page fetcher of one calendar's events. */
export function eventsSource(
  options: EventsSourceOptions,
): VerifyingSource<CalendarCursor, CalendarPage> {
  const { http, calendarId, pageSize, singleEvents } = options;
  const path = `calendars/${encodeURIComponent(calendarId)}/events`;
  return {
    cursorSchema: CalendarCursorSchema,
    pageSchema: CalendarPageSchema,
    async identity(signal) {
      return `${await options.account(signal)} calendar:${calendarId}`;
    },
    /**
     * `events.get` by id: Google returns cancelled events too (a delete), 404/410 once they are
     * purged; the window of the full sync applies as in a delta.
     */
    async verify(keys, req) {
      return mapLimit(keys, VERIFY_CONCURRENCY, async (id) => {
        const res = await unlessMissing(
          http.request({
            path: `${path}/${encodeURIComponent(id)}`,
            schema: EventSchema,
            endpoint: "calendar.events.get",
            signal: req.signal,
          }),
        );
        const event: GoogleEvent = res?.body ?? { id, status: "cancelled" };
        return eventChange(event, calendarId, singleEvents, req.window, false);
      });
    },
    async fetchPage(req: PageRequest<CalendarCursor, CalendarPage>) {
      const mode = req.cursor?.singleEvents ?? req.page?.singleEvents ?? singleEvents;
      if (mode !== singleEvents) {
        throw new StateError(
          `state was made with singleEvents=${mode}, this calendar uses singleEvents=${singleEvents}`,
        );
      }
      // Google forbids timeMin/timeMax/orderBy/q/iCalUID/updatedMin/showDeleted=false with a
      // syncToken (events.list reference): only the parameters below are ever sent with one.
      const query = req.cursor
        ? { maxResults: pageSize, singleEvents, syncToken: req.cursor.syncToken }
        : {
            maxResults: pageSize,
            singleEvents,
            // Cancelled events too (as deletes): a full sync resumed inside its first page gets
            // a newer snapshot, and an event a crashed batch had applied, deleted since, must
            // still be named for the copy to lose it.
            showDeleted: true,
            timeMin: req.window?.timeMin,
            timeMax: req.window?.timeMax,
          };
      const res = await http.request({
        path,
        query: { ...query, pageToken: req.page?.pageToken },
        schema: EventsPageSchema,
        endpoint: "calendar.events.list",
        signal: req.signal,
      });
      const body = res.body;
      const incremental = req.cursor !== undefined;
      const changes = body.items.map((event) =>
        eventChange(
          event,
          calendarId,
          singleEvents,
          incremental ? req.window : undefined,
          !incremental,
        ),
      );
      const page: Page<CalendarCursor, CalendarPage> = { changes };
      if (body.nextPageToken !== undefined) {
        page.nextPage = { pageToken: body.nextPageToken, singleEvents };
      } else if (body.nextSyncToken !== undefined) {
        // nextSyncToken only comes with the last page of a round.
        page.newCursor = { syncToken: body.nextSyncToken, singleEvents };
        // Pages reached by a page token list the snapshot their round started from (possibly a
        // round resumed much later): what changed since comes with one more delta, so a sync
        // that completes covers at least everything before it started.
        if (req.page?.pageToken !== undefined) page.nextPage = { singleEvents };
      }
      return page;
    },
  };
}

/**
 * One event as a change. Deletions are keyed on `id`, never `iCalUID` (empty on cancelled items,
 * shared by a series). A cancelled exception of a series (expanded or not) hides one instance:
 * with `singleEvents` it is that instance's delete; without it, it is kept as an exception record
 * for as long as its series exists, as the Calendar sync guide asks.
 */
export function eventChange(
  event: GoogleEvent,
  calendarId: string,
  singleEvents: boolean,
  window: SyncWindow | undefined,
  created: boolean,
): Change<GoogleEvent> {
  const cancelled = event.status === "cancelled";
  const exception = cancelled && !singleEvents && event.recurringEventId !== undefined;
  // Deltas are not bounded by the full sync's window (timeMin/timeMax are forbidden with a
  // syncToken): an event that left the window is a delete for the mirror.
  if ((cancelled && !exception) || (window && !inWindow(event, window))) {
    return {
      kind: "delete",
      object: { sourcekey: event.id, type: "item", parentKey: calendarId },
      soft: false,
    };
  }
  return {
    kind: "update",
    object: {
      sourcekey: event.id,
      type: "item",
      parentKey: calendarId,
      changeKey: event.etag,
      data: event,
    },
    created,
  };
}

function inWindow(event: GoogleEvent, window: SyncWindow): boolean {
  const start = time(event.start) ?? time(event.originalStartTime);
  // A series (singleEvents=false) ends with its last instance, which the rule decides: Google
  // lists it when any instance overlaps the window, so only its start can rule it out.
  const end = Array.isArray((event as { recurrence?: unknown }).recurrence)
    ? undefined
    : (time(event.end) ?? start);
  if (window.timeMin !== undefined && end !== undefined && end <= Date.parse(window.timeMin))
    return false;
  if (window.timeMax !== undefined && start !== undefined && start >= Date.parse(window.timeMax))
    return false;
  return true;
}

/** Epoch ms of an `EventDateTime` (`dateTime` or all-day `date`), read defensively. */
function time(t: unknown): number | undefined {
  if (t === null || typeof t !== "object") return undefined;
  const { dateTime, date } = t as { dateTime?: unknown; date?: unknown };
  const value =
    typeof dateTime === "string" ? dateTime : typeof date === "string" ? date : undefined;
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
