/**
 * The data model of the Google emulator: calendars and events, the calendar list, People
 * connections and a Gmail mailbox, all on one sequence counter. Mutations go through these
 * methods (the "second client" of the conformance kit), never through the adapter.
 */
import { Journal } from "./emulator-journal.js";

export interface EventTime {
  dateTime: string;
}

export interface StoredEvent {
  id: string;
  status: "confirmed" | "cancelled";
  etag: string;
  updated: string;
  summary?: string;
  description?: string;
  iCalUID?: string;
  start?: EventTime;
  end?: EventTime;
  recurrence?: string[];
  recurringEventId?: string;
  originalStartTime?: EventTime;
}

export interface CalendarEntry {
  id: string;
  etag: string;
  summary: string;
  accessRole: string;
  hidden?: boolean;
  deleted?: boolean;
}

export interface StoredPerson {
  resourceName: string;
  etag: string;
  names?: { displayName: string }[];
  emailAddresses?: { value: string }[];
  metadata?: { deleted?: boolean };
}

export interface StoredMessage {
  id: string;
  threadId: string;
  labelIds: string[];
  snippet: string;
  internalDate: string;
  historyId: string;
}

export interface HistoryEntry {
  id: number;
  kind: "messageAdded" | "messageDeleted" | "labelAdded" | "labelRemoved";
  messageId: string;
  threadId: string;
  labelIds?: string[];
}

const DAY = 86_400_000;
const EPOCH = Date.parse("2026-01-01T10:00:00Z");

/** Day `n` of the emulator's calendar, 10:00 UTC. */
export function dayTime(day: number, hours = 0): EventTime {
  return { dateTime: new Date(EPOCH + day * DAY + hours * 3600_000).toISOString() };
}

/** The number of instances of a stored series (`RRULE:…;COUNT=n`), 0 for a single event. */
export function seriesCount(event: StoredEvent): number {
  const rule = event.recurrence?.find((r) => r.startsWith("RRULE:"));
  const m = rule ? /COUNT=(\d+)/.exec(rule) : null;
  return m ? Number(m[1]) : 0;
}

export class GoogleModel {
  seq = 0;
  /**
   * Names this model's history in the tokens it issues: a token of another model (another
   * account, or the server before a restore) is one this server never issued.
   */
  readonly epoch = Math.random().toString(36).slice(2, 10);
  /** Tokens issued before these seqs are expired (410 / EXPIRED_SYNC_TOKEN / 404). */
  floors = { calendar: 0, calendarList: 0, people: 0, gmail: 0 };
  readonly calendars = new Map<string, Journal<StoredEvent>>();
  readonly calendarList = new Journal<CalendarEntry>();
  readonly people = new Journal<StoredPerson>();
  readonly messages = new Journal<StoredMessage | null>();
  readonly history: HistoryEntry[] = [];
  /** Called with the calendar id after each change of its events (push channels). */
  onCalendarChange: (calendarId: string) => void = () => {};
  /** Called after each mailbox change with the labels the message had before or after (Gmail push). */
  onMailChange: (entry: HistoryEntry, labelIds: readonly string[]) => void = () => {};
  #ids = 0;

  #next(): number {
    return ++this.seq;
  }
  #now(): string {
    return new Date(EPOCH + this.seq * 1000).toISOString();
  }
  newId(prefix: string): string {
    return `${prefix}${(++this.#ids).toString(36)}`;
  }

  /** Makes every sync token, page token and historyId issued so far invalid. */
  expire(family?: keyof GoogleModel["floors"]): void {
    const floor = this.#next();
    for (const key of Object.keys(this.floors) as (keyof GoogleModel["floors"])[]) {
      if (family === undefined || family === key) this.floors[key] = floor;
    }
  }

  // Calendars ---------------------------------------------------------------------------------

  addCalendar(id: string, summary = id): void {
    const seq = this.#next();
    this.calendarList.put(id, { id, etag: `"${seq}"`, summary, accessRole: "owner" }, seq);
    if (!this.calendars.has(id)) this.calendars.set(id, new Journal());
  }

  updateCalendar(id: string, patch: { summary?: string; hidden?: boolean }): boolean {
    const cur = this.calendarList.get(id);
    if (!cur || cur.deleted) return false;
    const seq = this.#next();
    this.calendarList.put(id, { ...cur, ...patch, etag: `"${seq}"` }, seq);
    return true;
  }

  removeCalendar(id: string): boolean {
    const cur = this.calendarList.get(id);
    if (!cur || cur.deleted) return false;
    const seq = this.#next();
    this.calendarList.put(
      id,
      { id, etag: `"${seq}"`, summary: "", accessRole: "none", deleted: true },
      seq,
    );
    return true;
  }

  liveCalendars(): CalendarEntry[] {
    return [...this.calendarList.keys()]
      .map((k) => this.calendarList.get(k) as CalendarEntry)
      .filter((c) => !c.deleted);
  }

  // Events ------------------------------------------------------------------------------------

  #putEvent(calendarId: string, event: Omit<StoredEvent, "etag" | "updated">): StoredEvent {
    const journal = this.#journal(calendarId);
    const seq = this.#next();
    const stored: StoredEvent = { ...event, etag: `"${seq}"`, updated: this.#now() };
    journal.put(event.id, stored, seq);
    this.onCalendarChange(calendarId);
    return stored;
  }

  #journal(calendarId: string): Journal<StoredEvent> {
    let j = this.calendars.get(calendarId);
    if (!j) this.calendars.set(calendarId, (j = new Journal()));
    return j;
  }

  insertEvent(calendarId: string, input: { summary: string; day: number; count?: number }): string {
    const id = this.newId("ev");
    this.#putEvent(calendarId, {
      id,
      status: "confirmed",
      summary: input.summary,
      iCalUID: `${id}@google.com`,
      start: dayTime(input.day),
      end: dayTime(input.day, 1),
      recurrence: input.count ? [`RRULE:FREQ=DAILY;COUNT=${input.count}`] : undefined,
    });
    return id;
  }

  updateEvent(calendarId: string, id: string, patch: { summary?: string; day?: number }): boolean {
    const cur = this.calendars.get(calendarId)?.get(id);
    if (!cur || cur.status === "cancelled") return false;
    const next = { ...cur, ...(patch.summary !== undefined ? { summary: patch.summary } : {}) };
    if (patch.day !== undefined && !cur.recurringEventId) {
      next.start = dayTime(patch.day);
      next.end = dayTime(patch.day, 1);
    }
    this.#putEvent(calendarId, next);
    return true;
  }

  /**
   * A client's `events.insert` / `events.update`: stores the event's writable fields under `id`
   * with a new etag. "duplicate": insert of an id that exists (cancelled ones included, as
   * Google does); "missing" / "gone": update of an unknown or deleted event; "stale": the
   * `ifMatch` etag is not the current one.
   */
  writeEvent(
    calendarId: string,
    id: string,
    fields: Record<string, unknown>,
    mode: { insert: true } | { insert: false; ifMatch?: string },
  ): StoredEvent | "duplicate" | "missing" | "gone" | "stale" {
    const cur = this.calendars.get(calendarId)?.get(id);
    if (mode.insert && cur) return "duplicate";
    if (!mode.insert) {
      if (!cur) return "missing";
      if (cur.status === "cancelled") return "gone";
      if (mode.ifMatch !== undefined && mode.ifMatch !== cur.etag) return "stale";
    }
    const { summary, start, end, recurrence, description } = fields as Partial<StoredEvent> & {
      description?: string;
    };
    return this.#putEvent(calendarId, {
      id,
      status: "confirmed",
      iCalUID: cur?.iCalUID ?? `${id}@google.com`,
      ...(summary !== undefined ? { summary } : {}),
      ...(description !== undefined ? { description } : {}),
      ...(start !== undefined ? { start } : {}),
      ...(end !== undefined ? { end } : {}),
      ...(recurrence !== undefined ? { recurrence } : {}),
    });
  }

  /** Deletes an event; a series takes its exceptions with it (they become bare cancelled stubs). */
  deleteEvent(calendarId: string, id: string): "deleted" | "gone" | "missing" {
    const journal = this.calendars.get(calendarId);
    const cur = journal?.get(id);
    if (!journal || !cur) return "missing";
    if (cur.status === "cancelled") return "gone";
    if (cur.recurrence) {
      for (const key of [...journal.keys()]) {
        const ex = journal.get(key);
        if (ex?.recurringEventId === id && key !== id)
          this.#putEvent(calendarId, { id: key, status: "cancelled" });
      }
    }
    const stub: Omit<StoredEvent, "etag" | "updated"> = cur.recurringEventId
      ? {
          id,
          status: "cancelled",
          recurringEventId: cur.recurringEventId,
          originalStartTime: cur.originalStartTime,
        }
      : { id, status: "cancelled", recurrence: cur.recurrence };
    this.#putEvent(calendarId, stub);
    return "deleted";
  }

  /** Cancels (or, with a summary, changes) one instance of a live series: an exception. */
  exception(calendarId: string, seriesId: string, index: number, summary?: string): boolean {
    const series = this.calendars.get(calendarId)?.get(seriesId);
    if (!series || series.status === "cancelled") return false;
    const count = seriesCount(series);
    if (index >= count) return false;
    const original = series.start ? instanceTime(series.start, index) : undefined;
    const base = {
      id: `${seriesId}_${index}`,
      recurringEventId: seriesId,
      originalStartTime: original,
    };
    this.#putEvent(
      calendarId,
      summary === undefined
        ? { ...base, status: "cancelled" }
        : {
            ...base,
            status: "confirmed",
            summary,
            start: original,
            end: series.end && instanceTime(series.end, index),
          },
    );
    return true;
  }

  liveEventIds(calendarId: string): string[] {
    const j = this.calendars.get(calendarId);
    if (!j) return [];
    return [...j.keys()].filter((k) => j.get(k)?.status === "confirmed");
  }

  seriesIds(calendarId: string): string[] {
    const j = this.calendars.get(calendarId);
    if (!j) return [];
    return [...j.keys()].filter((k) => {
      const e = j.get(k);
      return e?.status === "confirmed" && e.recurrence !== undefined;
    });
  }

  // People ------------------------------------------------------------------------------------

  addPerson(name: string): string {
    const resourceName = `people/${this.newId("c")}`;
    this.#putPerson({
      resourceName,
      names: [{ displayName: name }],
      emailAddresses: [{ value: `${name}@example.com` }],
    });
    return resourceName;
  }

  updatePerson(resourceName: string, name: string): boolean {
    const cur = this.people.get(resourceName);
    if (!cur || cur.metadata?.deleted) return false;
    this.#putPerson({ ...cur, names: [{ displayName: name }] });
    return true;
  }

  deletePerson(resourceName: string): boolean {
    const cur = this.people.get(resourceName);
    if (!cur || cur.metadata?.deleted) return false;
    this.#putPerson({ resourceName, metadata: { deleted: true } });
    return true;
  }

  livePeople(): StoredPerson[] {
    return [...this.people.keys()]
      .map((k) => this.people.get(k) as StoredPerson)
      .filter((p) => !p.metadata?.deleted);
  }

  #putPerson(person: Omit<StoredPerson, "etag">): void {
    const seq = this.#next();
    this.people.put(person.resourceName, { ...person, etag: `%${seq}` }, seq);
  }

  // Gmail -------------------------------------------------------------------------------------

  receiveMessage(snippet: string, options: { unread?: boolean; ageDays?: number } = {}): string {
    const id = this.newId("m");
    const seq = this.#next();
    const labelIds = ["INBOX", ...(options.unread === false ? [] : ["UNREAD"])];
    const internalDate = String(Date.now() - (options.ageDays ?? 0) * DAY);
    const message: StoredMessage = {
      id,
      threadId: `t${id}`,
      labelIds,
      snippet,
      internalDate,
      historyId: String(seq),
    };
    this.messages.put(id, message, seq);
    this.#mailChanged(
      { id: seq, kind: "messageAdded", messageId: id, threadId: message.threadId },
      labelIds,
    );
    return id;
  }

  deleteMessage(id: string): boolean {
    const cur = this.messages.get(id);
    if (!cur) return false;
    const seq = this.#next();
    this.messages.put(id, null, seq);
    this.#mailChanged(
      { id: seq, kind: "messageDeleted", messageId: id, threadId: cur.threadId },
      cur.labelIds,
    );
    return true;
  }

  setLabel(id: string, label: string, on: boolean): boolean {
    const cur = this.messages.get(id);
    if (!cur || cur.labelIds.includes(label) === on) return false;
    const seq = this.#next();
    const labelIds = on ? [...cur.labelIds, label] : cur.labelIds.filter((l) => l !== label);
    this.messages.put(id, { ...cur, labelIds, historyId: String(seq) }, seq);
    this.#mailChanged(
      {
        id: seq,
        kind: on ? "labelAdded" : "labelRemoved",
        messageId: id,
        threadId: cur.threadId,
        labelIds: [label],
      },
      [...new Set([...cur.labelIds, ...labelIds])],
    );
    return true;
  }

  #mailChanged(entry: HistoryEntry, labelIds: readonly string[]): void {
    this.history.push(entry);
    this.onMailChange(entry, labelIds);
  }

  liveMessages(): StoredMessage[] {
    return [...this.messages.keys()]
      .map((k) => this.messages.get(k))
      .filter((m): m is StoredMessage => !!m);
  }
}

function instanceTime(t: EventTime, index: number): EventTime {
  return { dateTime: new Date(Date.parse(t.dateTime) + index * DAY).toISOString() };
}

/** The instances a series expands to with `singleEvents=true`. */
export function expandSeries(series: StoredEvent): StoredEvent[] {
  const count = seriesCount(series);
  const out: StoredEvent[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${series.id}_${i}`;
    if (series.status === "cancelled") {
      out.push({
        id,
        status: "cancelled",
        etag: series.etag,
        updated: series.updated,
        recurringEventId: series.id,
      });
      continue;
    }
    const { recurrence: _r, ...rest } = series;
    out.push({
      ...rest,
      id,
      recurringEventId: series.id,
      start: series.start && instanceTime(series.start, i),
      end: series.end && instanceTime(series.end, i),
      originalStartTime: series.start && instanceTime(series.start, i),
    });
  }
  return out;
}
