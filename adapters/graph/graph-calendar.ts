import type { ChangeSource, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import {
  type DeltaLink,
  type DeltaWindow,
  deltaSource,
  getObject,
  isRemoved,
  mapLimited,
} from "./graph-delta.js";
import type { GraphEvent } from "./schemas.js";

const DAY = 86_400_000;

/** The key of the user's default calendar (`/me/calendarView/delta`, the v1.0 form). */
export const DEFAULT_CALENDAR = "primary";

export interface CalendarSourceOptions {
  http: HttpClient;
  user: string;
  calendarId: string;
  prefer: string;
  /** The window of a full sync when the caller gives none (days before and after now). */
  defaultDays: { past: number; future: number };
  concurrency: number;
}

/** The page fetcher of one calendar's view. */
export function calendarSource(options: CalendarSourceOptions): ChangeSource<DeltaLink, DeltaLink> {
  const { http, user, calendarId, prefer } = options;
  const base =
    calendarId === DEFAULT_CALENDAR
      ? `${user}/calendarView/delta`
      : // Documented for v1.0 on the default calendar only; other calendars are in beta's docs.
        `${user}/calendars/${encodeURIComponent(calendarId)}/calendarView/delta`;

  const current = async (id: string, window: DeltaWindow, signal: AbortSignal): Promise<Change> => {
    const event = (await getObject(
      http,
      { path: `${user}/events/${encodeURIComponent(id)}`, prefer, endpoint: "graph.events.get" },
      signal,
    )) as GraphEvent | undefined;
    return eventChange(
      event ?? { id, "@removed": { reason: "deleted" } },
      calendarId,
      window,
      false,
    );
  };

  const source = deltaSource({
    http,
    endpoint: "graph.calendarView.delta",
    prefer,
    window: (req) => fullSyncWindow(req, options.defaultDays),
    start: (window) => ({
      path: base,
      query: { startDateTime: window?.s, endDateTime: window?.e },
    }),
    map: (items, { incremental, window }) =>
      items.map((item) => eventChange(item as GraphEvent, calendarId, window, !incremental)),
  });
  return {
    ...source,
    verify: (keys: string[], req: PageRequest<DeltaLink, DeltaLink>) => {
      const window = (req.page ?? req.cursor)?.w ?? fullSyncWindow(req, options.defaultDays);
      return mapLimited(keys, options.concurrency, (id) => current(id, window, req.signal));
    },
  } as ChangeSource<DeltaLink, DeltaLink>;
}

/** The window a full sync uses: the caller's `timeMin`/`timeMax`, else days around today. */
export function fullSyncWindow(
  req: Pick<PageRequest, "window">,
  days: { past: number; future: number },
  now = Date.now(),
): DeltaWindow {
  const today = Math.floor(now / DAY) * DAY;
  const s = req.window?.timeMin ?? new Date(today - days.past * DAY).toISOString();
  const e = req.window?.timeMax ?? new Date(today + days.future * DAY).toISOString();
  return { s: new Date(s).toISOString(), e: new Date(e).toISOString() };
}

/** One calendar view item as a change: removed, or outside the window, is a delete. */
export function eventChange(
  event: GraphEvent,
  calendarId: string,
  window: DeltaWindow | undefined,
  created: boolean,
): Change<GraphEvent> {
  if (isRemoved(event) || (window && !inWindow(event, window))) {
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
      changeKey: typeof event.changeKey === "string" ? event.changeKey : undefined,
      data: event,
    },
    created,
  };
}

/** Overlap test as calendarView does it: the event ends after the start and starts before the end. */
function inWindow(event: GraphEvent, window: DeltaWindow): boolean {
  const start = time(event.start);
  const end = time(event.end) ?? start;
  if (end !== undefined && end <= Date.parse(window.s)) return false;
  if (start !== undefined && start >= Date.parse(window.e)) return false;
  return true;
}

/** Epoch ms of a Graph `dateTimeTimeZone`; without an offset it is read as UTC (we ask for UTC). */
function time(t: GraphEvent["start"]): number | undefined {
  const value = t?.dateTime;
  if (typeof value !== "string") return undefined;
  const zone = t?.timeZone;
  const hasOffset = /(Z|[+-]\d\d:?\d\d)$/.test(value);
  if (!hasOffset && zone !== undefined && zone.toUpperCase() !== "UTC") return undefined;
  const ms = Date.parse(hasOffset ? value : `${value}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}
