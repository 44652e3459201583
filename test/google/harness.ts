/**
 * The conformance-kit harness for the Google adapter: one emulator, six scopes (two calendars,
 * a calendar expanded with singleEvents, the calendar list, contacts, Gmail), mutations applied
 * through the emulator's model (never through the adapter).
 */
import fc from "fast-check";
import { MAILBOX_KEY } from "../../adapters/google/google-gmail.js";
import { createGoogleAccount, type GoogleAccount } from "../../adapters/google/index.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { SyncObject } from "../../src/core/types.js";
import type {
  ConformanceHarness,
  ConformanceScope,
  MirrorEntry,
} from "../../src/testing/harness.js";
import type { GoogleEmulator } from "./emulator.js";
import { decodeToken, encodeToken } from "./emulator-journal.js";
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

/** How to open a scope on an account, and what the server holds for it. */
interface ScopeSpec {
  name: string;
  family: Family;
  /** The account option the scope needs (the expanded calendar). */
  singleEvents: boolean;
  open(account: GoogleAccount): Syncable;
  /** Moves the cursor of a state of this scope past the server's history. */
  ahead(cursor: Record<string, unknown>, model: GoogleModel): Record<string, unknown>;
  truth(model: GoogleModel): Map<string, MirrorEntry>;
  project(obj: SyncObject): unknown;
  readOf?(obj: SyncObject): boolean | undefined;
}

const data = (obj: SyncObject) => obj.data as Record<string, unknown>;

/** A sync token `tag` of the emulator, re-issued as if the server's history were 1000 ahead. */
function aheadToken(tag: string) {
  return (cursor: Record<string, unknown>, model: GoogleModel) => {
    const tok = decodeToken<Record<string, unknown>>(tag, String(cursor.syncToken));
    const { t: _t, ...rest } = tok ?? {};
    return { ...cursor, syncToken: encodeToken(tag, { ...rest, s: model.seq + 1000 }) };
  };
}

const SPECS: ScopeSpec[] = [
  ...CALENDARS.map(
    (id): ScopeSpec => ({
      name: `calendar ${id}`,
      family: "calendar",
      singleEvents: false,
      open: (a) => a.calendar(id),
      ahead: aheadToken("cs"),
      truth: (model) => eventTruth(model, id, false),
      project: (obj) => projectEvent(data(obj)),
    }),
  ),
  {
    name: "calendar primary (singleEvents)",
    family: "calendar",
    singleEvents: true,
    open: (a) => a.calendar("primary"),
    ahead: aheadToken("cs"),
    truth: (model) => eventTruth(model, "primary", true),
    project: (obj) => projectEvent(data(obj)),
  },
  {
    name: "calendar list",
    family: "calendarList",
    singleEvents: false,
    open: (a) => a.calendarList(),
    ahead: aheadToken("ls"),
    truth: (model) =>
      new Map(
        model
          .liveCalendars()
          .map((c) => [
            c.id,
            { type: "folder" as const, data: { summary: c.summary, hidden: c.hidden === true } },
          ]),
      ),
    project: (obj) => ({ summary: data(obj).summary, hidden: data(obj).hidden === true }),
  },
  {
    name: "contacts",
    family: "contacts",
    singleEvents: false,
    open: (a) => a.contacts(),
    ahead: aheadToken("ps"),
    truth: (model) =>
      new Map(
        model
          .livePeople()
          .map((p) => [
            p.resourceName,
            { type: "user" as const, data: { name: p.names?.[0]?.displayName } },
          ]),
      ),
    project: (obj) => ({
      name: (data(obj).names as { displayName?: string }[] | undefined)?.[0]?.displayName,
    }),
  },
  {
    name: "gmail",
    family: "gmail",
    singleEvents: false,
    open: (a) => a.mail(),
    ahead: (cursor, model) => ({ ...cursor, historyId: String(model.seq + 1000) }),
    truth: (model) =>
      new Map(
        model.liveMessages().map((m) => [
          m.id,
          {
            type: "item" as const,
            parentKey: MAILBOX_KEY,
            data: { snippet: m.snippet, threadId: m.threadId },
            read: !m.labelIds.includes("UNREAD"),
          },
        ]),
      ),
    project: (obj) => ({ snippet: data(obj).snippet, threadId: data(obj).threadId }),
    readOf: (obj) => !((data(obj).labelIds as string[] | undefined) ?? []).includes("UNREAD"),
  },
];

/** Replaces the cursor inside a deltasync state (a state the server never issued). */
function withCursor(
  state: string,
  change: (cursor: Record<string, unknown>) => Record<string, unknown>,
): string {
  const prefix = "ds1.";
  const env = JSON.parse(Buffer.from(state.slice(prefix.length), "base64url").toString("utf8"));
  env.c = change(env.c);
  return prefix + Buffer.from(JSON.stringify(env), "utf8").toString("base64url");
}

export interface HarnessOptions {
  /** Random transient faults per request (0 = none). */
  chaosRate?: number;
  /** Emulator page size cap. */
  pageSize?: number;
  /** Restrict ops and scopes to these families (default: all). */
  families?: readonly Family[];
  /** Another account's server: the source of foreign states (`other@…`). */
  foreign?: GoogleEmulator;
}

/** A harness over a running emulator; each history resets it. */
export function googleHarness(
  emulator: GoogleEmulator,
  options: HarnessOptions = {},
): ConformanceHarness<GoogleOp> {
  let seed = 1;
  let transient = 0;
  const { foreign, families } = options;
  const specs = families ? SPECS.filter((s) => families.includes(s.family)) : SPECS;
  return {
    name: `google${families ? ` [${families.join(",")}]` : ""}${options.chaosRate ? " (faults)" : ""}`,
    mutation: googleOps(families),
    async setup() {
      emulator.reset();
      emulator.options.maxPageSize = options.pageSize ?? 3;
      for (const id of CALENDARS) emulator.model.addCalendar(id);
      if (options.chaosRate) emulator.chaos(seed++, options.chaosRate);
      const accounts: GoogleAccount[] = [];
      // Each account is a process: `reopen` makes a new one (no pages kept, identity asked again).
      const open = (singleEvents: boolean, server = emulator): GoogleAccount => {
        const account = createGoogleAccount({
          baseUrl: server.url,
          accessToken: "test-token",
          retry: { retries: 3, minDelayMs: 1, maxDelayMs: 20 },
          gmailConcurrency: 2,
          singleEvents,
        });
        accounts.push(account);
        return account;
      };
      const a = open(false);
      const b = open(true);
      const scopes = specs.map(
        (spec): ConformanceScope => ({
          name: spec.name,
          syncable: spec.open(spec.singleEvents ? b : a),
          truth: async () => spec.truth(emulator.model),
          project: spec.project,
          readOf: spec.readOf,
          reopen: () => spec.open(open(spec.singleEvents)),
          foreignState: foreign
            ? async () => {
                for (const id of CALENDARS)
                  if (!foreign.model.calendars.has(id)) foreign.model.addCalendar(id);
                return spec.open(open(spec.singleEvents, foreign)).sync({});
              }
            : undefined,
          aheadState: async () => {
            const state = await spec.open(open(spec.singleEvents)).sync({});
            return withCursor(state, (c) => spec.ahead(c, emulator.model));
          },
        }),
      );
      return {
        scopes,
        apply: async (op) => applyOp(emulator.model, op),
        expireStates: async () => emulator.model.expire(),
        injectFault: (kind) => {
          if (kind === "invalid") emulator.inject({ invalid: true });
          else emulator.inject(transient++ % 2 ? { status: 500 } : { status: 503 });
        },
        teardown: async () => {
          await Promise.all(accounts.map((account) => account.close()));
        },
      };
    },
  };
}
