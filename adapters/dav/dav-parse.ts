/**
 * Parsed basics of an iCalendar / vCard body, read with ical.js (never hand-parsed).
 */
import ICAL from "ical.js";

/** What deltasync reads out of an item; the raw text is always kept next to it. */
export interface DavBasics {
  /** `UID` of the first VEVENT/VTODO/VJOURNAL (calendars) or of the VCARD. */
  uid?: string;
  /** `VEVENT`, `VTODO`, `VJOURNAL` or `VCARD`. */
  component?: string;
  /** `SUMMARY` (calendars). */
  summary?: string;
  /** `FN` (contacts). */
  fn?: string;
  /** `DTSTART` as ical.js prints it: `2024-01-02`, `2024-01-02T10:00:00` or `…Z` for UTC. */
  start?: string;
  /** `DTEND`, else `DUE` (tasks), same format as `start`. */
  end?: string;
  /** The `TZID` of `DTSTART` when it has one. */
  timeZone?: string;
  /** True when `DTSTART` is a DATE (an all-day event). */
  allDay?: boolean;
  /** `LAST-MODIFIED` (or `REV` for vCards) as an ISO 8601 UTC string. */
  lastModified?: string;
  /** Set when ical.js could not parse the body; the item is still exported with its raw text. */
  parseError?: string;
}

const CALENDAR_COMPONENTS = ["vevent", "vtodo", "vjournal"] as const;

/** jCal (RFC 7265) as ical.js returns it: `[name, properties, components]`. */
type JCalComponent = [string, JCalProperty[], JCalComponent[]];
/** `[name, params, type, value, ...]`; date-times are already ISO-like strings. */
type JCalProperty = [string, Record<string, unknown>, string, ...unknown[]];

/**
 * Reads the basics of an iCalendar or vCard body; never throws. The jCal that ical.js's parser
 * returns is read directly (no Component/Time objects): a third of the cost on big syncs.
 */
export function parseBasics(raw: string): DavBasics {
  try {
    const root = ICAL.parse(raw) as unknown as JCalComponent;
    if (!Array.isArray(root) || typeof root[0] !== "string") return { parseError: "no component" };
    if (root[0] === "vcard") return cardBasics(root, raw);
    for (const name of CALENDAR_COMPONENTS) {
      const comp = root[2]?.find((c) => c[0] === name);
      if (comp) return calendarBasics(comp);
    }
    return { component: root[0].toUpperCase() };
  } catch (error) {
    return { parseError: error instanceof Error ? error.message : String(error) };
  }
}

function prop(comp: JCalComponent, name: string): JCalProperty | undefined {
  return comp[1].find((p) => p[0] === name);
}

function text(comp: JCalComponent, name: string): string | undefined {
  const value = prop(comp, name)?.[3];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function calendarBasics(comp: JCalComponent): DavBasics {
  const out: DavBasics = { component: comp[0].toUpperCase() };
  const uid = text(comp, "uid");
  if (uid) out.uid = uid;
  const summary = text(comp, "summary");
  if (summary) out.summary = summary;
  const start = prop(comp, "dtstart");
  if (start && typeof start[3] === "string") {
    out.start = start[3];
    out.allDay = start[2] === "date";
    const tz = start[1].tzid;
    if (typeof tz === "string" && tz !== "") out.timeZone = tz;
  }
  const end = text(comp, "dtend") ?? text(comp, "due");
  if (end) out.end = end;
  const modified = isoOf(text(comp, "last-modified"));
  if (modified) out.lastModified = modified;
  return out;
}

/** ical.js's design with FN as plain text: its text rules unescape `\;` (the vCard ones do not). */
const CARD_TEXT = { ...ICAL.design.icalendar, property: { fn: { defaultType: "text" } } };

/**
 * A vCard text value with every escape of RFC 6350 §3.4 / RFC 2426 §4 undone. ical.js's vCard
 * design leaves `\;` escaped in single-valued text (and has already turned `\\` into `\`, so the
 * two can't be told apart afterwards): the property's line is read again with text rules that
 * undo `\\`, `\;`, `\,` and `\n` together.
 */
function cardText(raw: string, name: string, parsed: string): string {
  const unfolded = raw.replace(/\r?\n[ \t]/g, "");
  const line = new RegExp(`^(?:[A-Za-z0-9-]+\\.)?(${name}[;:].*?)\\r?$`, "im").exec(unfolded)?.[1];
  if (line === undefined) return parsed;
  const value = (ICAL.parse.property(line, CARD_TEXT as never) as unknown as JCalProperty)[3];
  return typeof value === "string" ? value : parsed;
}

function cardBasics(card: JCalComponent, raw: string): DavBasics {
  const out: DavBasics = { component: "VCARD" };
  const uid = text(card, "uid");
  if (uid) out.uid = uid;
  const fn = text(card, "fn");
  if (fn) out.fn = fn.includes("\\") ? cardText(raw, "fn", fn) : fn;
  const rev = isoOf(text(card, "rev"));
  if (rev) out.lastModified = rev;
  return out;
}

function isoOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}
