/**
 * The conformance-kit harness for the Google adapter: one emulator, six scopes (two calendars,
 * a calendar expanded with singleEvents, the calendar list, contacts, Gmail), mutations applied
 * through the emulator's model (never through the adapter).
 */
import fc from "fast-check";
import { MAILBOX_KEY } from "../../adapters/google/google-gmail.js";
import { createGoogleAccount, type GoogleAccount } from "../../adapters/google/index.js";
import type { SyncObject } from "../../src/core/types.js";
import type {
  ConformanceHarness,
  ConformanceScope,
  MirrorEntry,
} from "../../src/testing/harness.js";
import type { GoogleEmulator } from "./emulator.js";
import { expandSeries, type GoogleModel, type StoredEvent } from "./emulator-model.js";

const CALENDARS = ["primary", "work"] as const;

export type GoogleOp =
  | { t: "event"; cal: number; summary: string; day: number; count: number }
  | { t: "editEvent"; cal: number; pick: number; summary: string; day?: number }
  | { t: "deleteEvent"; cal: number; pick: number }
  | { t: "exception"; cal: number; pick: number; index: number; summary?: string }
  | { t: "calendar"; summary: string }
  | { t: "editCalendar"; pick: number; summary: string; hidden: boolean }
  | { t: "removeCalendar"; pick: number }
  | { t: "person"; name: string }
  | { t: "editPerson"; pick: number; name: string }
  | { t: "deletePerson"; pick: number }
  | { t: "message"; snippet: string; unread: boolean }
  | { t: "deleteMessage"; pick: number }
  /** Toggles the label (marking read/unread, starring, trashing). */
  | { t: "label"; pick: number; label: "UNREAD" | "STARRED" | "TRASH" };

// Small value domains: updates often revert an object to a value it had before (a resume must
// still re-deliver it), and days land inside and outside a window.
const word = fc.constantFrom("a", "b", "c");
const day = fc.constantFrom(1, 2, 3);
const cal = fc.nat(1);
const pick = fc.nat(20);

/** Which part of the account a history exercises (a focused history finds bugs sooner). */
export type Family = "calendar" | "calendarList" | "contacts" | "gmail";

const FAMILY_OF: Record<GoogleOp["t"], Family> = {
  event: "calendar",
  editEvent: "calendar",
  deleteEvent: "calendar",
  exception: "calendar",
  calendar: "calendarList",
  editCalendar: "calendarList",
  removeCalendar: "calendarList",
  person: "contacts",
  editPerson: "contacts",
  deletePerson: "contacts",
  message: "gmail",
  deleteMessage: "gmail",
  label: "gmail",
};

const allOps: fc.Arbitrary<GoogleOp> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("event" as const),
      cal,
      summary: word,
      day,
      count: fc.constantFrom(0, 0, 2, 3),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("editEvent" as const),
      cal,
      pick,
      summary: word,
      day: fc.option(day, { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("deleteEvent" as const), cal, pick }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("exception" as const),
      cal,
      pick,
      index: fc.nat(2),
      summary: fc.option(word, { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("calendar" as const), summary: word }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("editCalendar" as const),
      pick,
      summary: word,
      hidden: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("removeCalendar" as const), pick }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("person" as const), name: word }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("editPerson" as const), pick, name: word }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("deletePerson" as const), pick }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("message" as const),
      snippet: word,
      unread: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("deleteMessage" as const), pick }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("label" as const),
      pick,
      label: fc.constantFrom(
        "UNREAD" as const,
        "UNREAD" as const,
        "STARRED" as const,
        "TRASH" as const,
      ),
    }),
  },
);

/** Random ops of the given families. */
export function googleOps(families?: readonly Family[]): fc.Arbitrary<GoogleOp> {
  if (!families) return allOps;
  return allOps.filter((op) => families.includes(FAMILY_OF[op.t]));
}

function nth<T>(list: T[], n: number): T | undefined {
  return list.length ? list[n % list.length] : undefined;
}

/** Applies one op through the emulator's model (the backend's own "second client"). */
export function applyOp(model: GoogleModel, op: GoogleOp): void {
  const calendarId = CALENDARS[("cal" in op ? op.cal : 0) % CALENDARS.length] as string;
  switch (op.t) {
    case "event":
      model.insertEvent(calendarId, { summary: op.summary, day: op.day, count: op.count });
      return;
    case "editEvent": {
      const id = nth(model.liveEventIds(calendarId), op.pick);
      if (id) model.updateEvent(calendarId, id, { summary: op.summary, day: op.day });
      return;
    }
    case "deleteEvent": {
      const id = nth(model.liveEventIds(calendarId), op.pick);
      if (id) model.deleteEvent(calendarId, id);
      return;
    }
    case "exception": {
      const id = nth(model.seriesIds(calendarId), op.pick);
      if (id) model.exception(calendarId, id, op.index, op.summary);
      return;
    }
    case "calendar":
      model.addCalendar(model.newId("cal-"), op.summary);
      return;
    case "editCalendar": {
      const c = nth(extraCalendars(model), op.pick);
      if (c) model.updateCalendar(c, { summary: op.summary, hidden: op.hidden });
      return;
    }
    case "removeCalendar": {
      const c = nth(extraCalendars(model), op.pick);
      if (c) model.removeCalendar(c);
      return;
    }
    case "person":
      model.addPerson(op.name);
      return;
    case "editPerson": {
      const p = nth(model.livePeople(), op.pick);
      if (p) model.updatePerson(p.resourceName, op.name);
      return;
    }
    case "deletePerson": {
      const p = nth(model.livePeople(), op.pick);
      if (p) model.deletePerson(p.resourceName);
      return;
    }
    case "message":
      model.receiveMessage(op.snippet, { unread: op.unread });
      return;
    case "deleteMessage": {
      const m = nth(model.liveMessages(), op.pick);
      if (m) model.deleteMessage(m.id);
      return;
    }
    case "label": {
      const m = nth(model.liveMessages(), op.pick);
      if (m) model.setLabel(m.id, op.label, !m.labelIds.includes(op.label));
      return;
    }
  }
}

function extraCalendars(model: GoogleModel): string[] {
  return model
    .liveCalendars()
    .map((c) => c.id)
    .filter((id) => !(CALENDARS as readonly string[]).includes(id));
}

interface EventLike {
  summary?: unknown;
  status?: unknown;
  recurringEventId?: unknown;
  start?: { dateTime?: unknown };
  originalStartTime?: { dateTime?: unknown };
}

/** What the kit compares of an event. */
export function projectEvent(e: EventLike): unknown {
  return {
    summary: e.summary,
    status: e.status ?? "confirmed",
    recurringEventId: e.recurringEventId,
    start: e.start?.dateTime ?? e.originalStartTime?.dateTime,
  };
}

/** What the server holds for a calendar, as the kit compares it (projected events by id). */
export function eventTruth(
  model: GoogleModel,
  calendarId: string,
  singleEvents: boolean,
): Map<string, MirrorEntry> {
  const journal = model.calendars.get(calendarId);
  const out = new Map<string, MirrorEntry>();
  if (!journal) return out;
  const add = (e: StoredEvent) =>
    out.set(e.id, { type: "item", parentKey: calendarId, data: projectEvent(e) });
  for (const key of journal.keys()) {
    const e = journal.get(key) as StoredEvent;
    if (singleEvents) {
      if (e.recurrence && e.status === "confirmed") {
        for (const i of expandSeries(e)) if (journal.get(i.id) === undefined) add(i);
      } else if (e.status === "confirmed" && !e.recurrence) add(e);
      continue;
    }
    if (e.status === "confirmed") add(e);
    else if (e.recurringEventId && journal.get(e.recurringEventId)?.status === "confirmed") add(e);
  }
  return out;
}

function scopes(
  emulator: GoogleEmulator,
  a: GoogleAccount,
  b: GoogleAccount,
  families: readonly Family[] | undefined,
): ConformanceScope[] {
  const all = allScopes(emulator, a, b);
  return (families ? all.filter((s) => families.includes(s.family)) : all).map((s) => s.scope);
}

function allScopes(
  emulator: GoogleEmulator,
  a: GoogleAccount,
  b: GoogleAccount,
): { family: Family; scope: ConformanceScope }[] {
  const model = () => emulator.model;
  const data = (obj: SyncObject) => obj.data as Record<string, unknown>;
  const list: ConformanceScope[] = [
    ...CALENDARS.map((id) => ({
      name: `calendar ${id}`,
      syncable: a.calendar(id),
      truth: async () => eventTruth(model(), id, false),
      project: (obj: SyncObject) => projectEvent(data(obj)),
    })),
    {
      name: "calendar primary (singleEvents)",
      syncable: b.calendar("primary"),
      truth: async () => eventTruth(model(), "primary", true),
      project: (obj: SyncObject) => projectEvent(data(obj)),
    },
    {
      name: "calendar list",
      syncable: a.calendarList(),
      truth: async () =>
        new Map(
          model()
            .liveCalendars()
            .map((c) => [
              c.id,
              { type: "folder" as const, data: { summary: c.summary, hidden: c.hidden === true } },
            ]),
        ),
      project: (obj: SyncObject) => ({
        summary: data(obj).summary,
        hidden: data(obj).hidden === true,
      }),
    },
    {
      name: "contacts",
      syncable: a.contacts(),
      truth: async () =>
        new Map(
          model()
            .livePeople()
            .map((p) => [
              p.resourceName,
              { type: "user" as const, data: { name: p.names?.[0]?.displayName } },
            ]),
        ),
      project: (obj: SyncObject) => ({
        name: (data(obj).names as { displayName?: string }[] | undefined)?.[0]?.displayName,
      }),
    },
    {
      name: "gmail",
      syncable: a.mail(),
      truth: async () =>
        new Map(
          model()
            .liveMessages()
            .map((m) => [
              m.id,
              {
                type: "item" as const,
                parentKey: MAILBOX_KEY,
                data: { snippet: m.snippet, threadId: m.threadId },
                read: !m.labelIds.includes("UNREAD"),
              },
            ]),
        ),
      project: (obj: SyncObject) => ({ snippet: data(obj).snippet, threadId: data(obj).threadId }),
      readOf: (obj: SyncObject) =>
        !((data(obj).labelIds as string[] | undefined) ?? []).includes("UNREAD"),
    },
  ];
  const familyOf = (name: string): Family =>
    name.startsWith("calendar list")
      ? "calendarList"
      : name.startsWith("calendar")
        ? "calendar"
        : name === "contacts"
          ? "contacts"
          : "gmail";
  return list.map((scope) => ({ family: familyOf(scope.name), scope }));
}

export interface HarnessOptions {
  /** Random transient faults per request (0 = none). */
  chaosRate?: number;
  /** Emulator page size cap. */
  pageSize?: number;
  /** Restrict ops and scopes to these families (default: all). */
  families?: readonly Family[];
}

/** A harness over a running emulator; each history resets it. */
export function googleHarness(
  emulator: GoogleEmulator,
  options: HarnessOptions = {},
): ConformanceHarness<GoogleOp> {
  let seed = 1;
  return {
    name: `google${options.families ? ` [${options.families.join(",")}]` : ""}${options.chaosRate ? " (faults)" : ""}`,
    mutation: googleOps(options.families),
    async setup() {
      emulator.reset();
      emulator.options.maxPageSize = options.pageSize ?? 3;
      for (const id of CALENDARS) emulator.model.addCalendar(id);
      if (options.chaosRate) emulator.chaos(seed++, options.chaosRate);
      const common = {
        baseUrl: emulator.url,
        accessToken: "test-token",
        retry: { retries: 3, minDelayMs: 1, maxDelayMs: 20 },
        gmailConcurrency: 2,
      };
      const a = createGoogleAccount(common);
      const b = createGoogleAccount({ ...common, singleEvents: true });
      return {
        scopes: scopes(emulator, a, b, options.families),
        apply: async (op) => applyOp(emulator.model, op),
        expireStates: async () => emulator.model.expire(),
        teardown: async () => {
          await a.close();
          await b.close();
        },
      };
    },
  };
}
