/**
 * The conformance-kit harness for the Graph adapter: one emulator, scopes of every kind (a mail
 * folder, server-wide mail, the mail and contact hierarchies, two calendar views, the calendar
 * list, contacts), mutations applied through the emulator's model (never through the adapter).
 * Values come from small domains so updates often revert to earlier values.
 */
import fc from "fast-check";
import { createGraphAccount, type GraphAccount } from "../../adapters/graph/index.js";
import { decodeState, encodeState } from "../../src/core/state.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { SyncObject } from "../../src/core/types.js";
import type {
  ConformanceHarness,
  ConformanceScope,
  MirrorEntry,
} from "../../src/testing/harness.js";
import type { EmulatorOptions, GraphEmulator } from "./emulator.js";
import { CONTACTS_ROOT, type GraphModel } from "./emulator-model.js";

const DAY = 86_400_000;
const CALENDARS = ["primary", "work"] as const;

export type GraphOp =
  | { t: "receive"; folder: number; subject: string; isRead: boolean }
  | { t: "read"; pick: number }
  | { t: "flag"; pick: number }
  | { t: "subject"; pick: number; subject: string }
  | { t: "move"; pick: number; folder: number }
  | { t: "deleteMessage"; pick: number }
  | { t: "addFolder"; name: string; parent: number }
  | { t: "renameFolder"; pick: number; name: string }
  | { t: "deleteFolder"; pick: number }
  | { t: "event"; cal: number; subject: string; day: number; count: number }
  | { t: "editEvent"; cal: number; pick: number; subject?: string; day?: number }
  | { t: "exception"; cal: number; pick: number; index: number; subject: string }
  | { t: "cancel"; cal: number; pick: number; index: number }
  | { t: "deleteEvent"; cal: number; pick: number }
  | { t: "calendar"; name: string }
  | { t: "renameCalendar"; pick: number; name: string }
  | { t: "removeCalendar"; pick: number }
  | { t: "contact"; name: string; folder: number }
  | { t: "editContact"; pick: number; name?: string; folder?: number }
  | { t: "deleteContact"; pick: number }
  | { t: "contactFolder"; name: string }
  | { t: "deleteContactFolder"; pick: number };

/** Which part of the account a history exercises. */
export type Family = "mail" | "calendar" | "contacts";

const FAMILY: Record<GraphOp["t"], Family> = {
  receive: "mail",
  read: "mail",
  flag: "mail",
  subject: "mail",
  move: "mail",
  deleteMessage: "mail",
  addFolder: "mail",
  renameFolder: "mail",
  deleteFolder: "mail",
  event: "calendar",
  editEvent: "calendar",
  exception: "calendar",
  cancel: "calendar",
  deleteEvent: "calendar",
  calendar: "calendar",
  renameCalendar: "calendar",
  removeCalendar: "calendar",
  contact: "contacts",
  editContact: "contacts",
  deleteContact: "contacts",
  contactFolder: "contacts",
  deleteContactFolder: "contacts",
};

const word = fc.constantFrom("a", "b", "c");
const pick = fc.nat(20);
const cal = fc.nat(1);
/** Days from day 0 (10 days ago); 600 lies outside the default window. */
const day = fc.constantFrom(0, 3, 12, 600);
const rec = <T extends GraphOp["t"]>(
  t: T,
  fields: Record<string, fc.Arbitrary<unknown>>,
  weight = 1,
) => ({
  weight,
  arbitrary: fc.record({ t: fc.constant(t), ...fields }) as unknown as fc.Arbitrary<GraphOp>,
});
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const allOps: fc.Arbitrary<GraphOp> = fc.oneof(
  rec("receive", { folder: pick, subject: word, isRead: fc.boolean() }, 4),
  rec("read", { pick }, 4),
  rec("flag", { pick }, 1),
  rec("subject", { pick, subject: word }, 1),
  rec("move", { pick, folder: pick }, 3),
  rec("deleteMessage", { pick }, 2),
  rec("addFolder", { name: word, parent: pick }, 1),
  rec("renameFolder", { pick, name: word }, 1),
  rec("deleteFolder", { pick }, 1),
  rec("event", { cal, subject: word, day, count: fc.constantFrom(0, 0, 2, 3) }, 3),
  rec("editEvent", { cal, pick, subject: opt(word), day: opt(day) }, 2),
  rec("exception", { cal, pick, index: fc.nat(2), subject: word }, 1),
  rec("cancel", { cal, pick, index: fc.nat(2) }, 1),
  rec("deleteEvent", { cal, pick }, 2),
  rec("calendar", { name: word }, 1),
  rec("renameCalendar", { pick, name: word }, 1),
  rec("removeCalendar", { pick }, 1),
  rec("contact", { name: word, folder: pick }, 3),
  rec("editContact", { pick, name: opt(word), folder: opt(pick) }, 2),
  rec("deleteContact", { pick }, 1),
  rec("contactFolder", { name: word }, 1),
  rec("deleteContactFolder", { pick }, 1),
);

export function graphOps(families?: readonly Family[]): fc.Arbitrary<GraphOp> {
  return families ? allOps.filter((op) => families.includes(FAMILY[op.t])) : allOps;
}

function nth<T>(list: readonly T[], n: number): T | undefined {
  return list.length ? list[n % list.length] : undefined;
}

const extraFolders = (m: GraphModel) =>
  m.liveFolderIds().filter((id) => id !== "inbox" && id !== "archive");

/** Applies one op through the emulator's model. */
export function applyOp(m: GraphModel, op: GraphOp): void {
  const calendarId = "cal" in op ? (CALENDARS[op.cal % CALENDARS.length] as string) : "primary";
  const message = (n: number) => nth(m.messages.live(), n);
  const events = () => m.events.live().filter((e) => e.calendarId === calendarId);
  const contactFolderKeys = () => [CONTACTS_ROOT, ...m.contactFolders.live().map((f) => f.id)];
  switch (op.t) {
    case "receive":
      m.receive(nth(m.liveFolderIds(), op.folder) as string, op.subject, { isRead: op.isRead });
      return;
    case "read": {
      const msg = message(op.pick);
      if (msg) m.updateMessage(msg.id, { isRead: !msg.isRead });
      return;
    }
    case "flag": {
      const msg = message(op.pick);
      if (msg) m.updateMessage(msg.id, { flagged: !msg.flagged });
      return;
    }
    case "subject": {
      const msg = message(op.pick);
      if (msg) m.updateMessage(msg.id, { subject: op.subject });
      return;
    }
    case "move": {
      const msg = message(op.pick);
      if (msg) m.moveMessage(msg.id, nth(m.liveFolderIds(), op.folder) as string);
      return;
    }
    case "deleteMessage": {
      const msg = message(op.pick);
      if (msg) m.deleteMessage(msg.id);
      return;
    }
    case "addFolder":
      m.addFolder(op.name, op.parent % 3 === 0 ? undefined : nth(m.liveFolderIds(), op.parent));
      return;
    case "renameFolder": {
      const id = nth(extraFolders(m), op.pick);
      if (id) m.renameFolder(id, op.name);
      return;
    }
    case "deleteFolder": {
      const id = nth(extraFolders(m), op.pick);
      if (id) m.deleteFolder(id);
      return;
    }
    case "event":
      m.addEvent(calendarId, op.subject, op.day, op.count);
      return;
    case "editEvent": {
      const e = nth(events(), op.pick);
      if (e) m.updateEvent(e.id, { subject: op.subject, day: op.day });
      return;
    }
    case "exception": {
      const e = nth(
        events().filter((x) => x.count > 0),
        op.pick,
      );
      if (e) m.updateEvent(e.id, { exception: [op.index, op.subject] });
      return;
    }
    case "cancel": {
      const e = nth(
        events().filter((x) => x.count > 0),
        op.pick,
      );
      if (e) m.updateEvent(e.id, { cancel: op.index });
      return;
    }
    case "deleteEvent": {
      const e = nth(events(), op.pick);
      if (e) m.deleteEvent(e.id);
      return;
    }
    case "calendar":
      m.addCalendar(op.name);
      return;
    case "renameCalendar": {
      const c = nth(extraCalendars(m), op.pick);
      if (c) m.renameCalendar(c, op.name);
      return;
    }
    case "removeCalendar": {
      const c = nth(extraCalendars(m), op.pick);
      if (c) m.removeCalendar(c);
      return;
    }
    case "contact":
      m.addContact(op.name, nth(contactFolderKeys(), op.folder));
      return;
    case "editContact": {
      const c = nth(m.contacts.live(), op.pick);
      if (c)
        m.updateContact(c.id, {
          displayName: op.name,
          parentFolderId: op.folder === undefined ? undefined : nth(contactFolderKeys(), op.folder),
        });
      return;
    }
    case "deleteContact": {
      const c = nth(m.contacts.live(), op.pick);
      if (c) m.deleteContact(c.id);
      return;
    }
    case "contactFolder":
      m.addContactFolder(op.name);
      return;
    case "deleteContactFolder": {
      const f = nth(m.contactFolders.live(), op.pick);
      if (f) m.deleteContactFolder(f.id);
      return;
    }
  }
}

const extraCalendars = (m: GraphModel) =>
  [...m.calendars.keys()].filter((id) => !(CALENDARS as readonly string[]).includes(id));

type Data = Record<string, unknown>;
const data = (obj: SyncObject) => obj.data as Data;
const projectMessage = (d: Data) => ({
  subject: d.subject,
  flag: (d.flag as { flagStatus?: string } | undefined)?.flagStatus,
});
const projectEvent = (d: Data) => ({
  subject: d.subject,
  type: d.type,
  start: (d.start as { dateTime?: string } | undefined)?.dateTime,
});

function messageTruth(m: GraphModel, folderId?: string): Map<string, MirrorEntry> {
  const out = new Map<string, MirrorEntry>();
  for (const msg of m.messages.live()) {
    if (folderId !== undefined && msg.parentFolderId !== folderId) continue;
    out.set(msg.id, {
      type: "item",
      parentKey: msg.parentFolderId,
      data: { subject: msg.subject, flag: msg.flagged ? "flagged" : "notFlagged" },
      read: msg.isRead,
    });
  }
  return out;
}

function eventTruth(m: GraphModel, calendarId: string): Map<string, MirrorEntry> {
  // The adapter's default window: 365 days either side of today (UTC midnight).
  const today = Math.floor(Date.now() / DAY) * DAY;
  const [start, end] = [today - 365 * DAY, today + 365 * DAY];
  const out = new Map<string, MirrorEntry>();
  for (const record of m.events.live()) {
    if (record.calendarId !== calendarId) continue;
    for (const ev of m.expand(record)) {
      if (!(ev.end > start && ev.start < end)) continue;
      out.set(ev.id, {
        type: "item",
        parentKey: calendarId,
        data: {
          subject: ev.subject,
          type: ev.type,
          start: new Date(ev.start).toISOString().replace(/\.\d+Z$/, ".0000000"),
        },
      });
    }
  }
  return out;
}

interface Scoped {
  family: Family;
  /** The same scope on another account (a restarted process, or another mailbox). */
  of(account: GraphAccount): Syncable;
  /**
   * Not part of expiry histories: a composite resets only the expired child (no error to see),
   * and the calendar list has no server token to expire.
   */
  composite: boolean;
  scope: ConformanceScope;
}

function allScopes(emulator: GraphEmulator, a: GraphAccount): Scoped[] {
  const model = () => emulator.model;
  const folderEntry = (f: { displayName: string; parentFolderId: string }) => ({
    type: "folder" as const,
    parentKey: f.parentFolderId,
    data: { displayName: f.displayName },
  });
  return [
    {
      family: "mail",
      composite: false,
      of: (x) => x.folder("inbox"),
      scope: {
        name: "folder inbox",
        syncable: a.folder("inbox"),
        truth: async () => messageTruth(model(), "inbox"),
        project: (obj) => projectMessage(data(obj)),
        readOf: (obj) => data(obj).isRead as boolean | undefined,
      },
    },
    {
      family: "mail",
      composite: true,
      of: (x) => x.mail(),
      scope: {
        name: "mail (every folder)",
        syncable: a.mail(),
        truth: async () => messageTruth(model()),
        project: (obj) => projectMessage(data(obj)),
        readOf: (obj) => data(obj).isRead as boolean | undefined,
      },
    },
    {
      family: "mail",
      composite: false,
      of: (x) => x.mailFolders(),
      scope: {
        name: "mail folders",
        syncable: a.mailFolders(),
        truth: async () =>
          new Map(
            model()
              .mailFolders.live()
              .map((f) => [f.id, folderEntry(f)]),
          ),
        project: (obj) => ({ displayName: data(obj).displayName }),
      },
    },
    ...CALENDARS.map((id) => ({
      family: "calendar" as const,
      composite: false,
      of: (x: GraphAccount) => x.calendar(id),
      scope: {
        name: `calendar ${id}`,
        syncable: a.calendar(id),
        truth: async () => eventTruth(model(), id),
        project: (obj: SyncObject) => projectEvent(data(obj)),
      },
    })),
    {
      family: "calendar",
      composite: true,
      of: (x) => x.calendars(),
      scope: {
        name: "calendar list",
        syncable: a.calendars(),
        truth: async () =>
          new Map(
            [...model().calendars.values()].map((c) => [
              c.id,
              { type: "folder" as const, data: { name: c.name } },
            ]),
          ),
        project: (obj) => ({ name: data(obj).name }),
      },
    },
    {
      family: "contacts",
      composite: true,
      of: (x) => x.contacts(),
      scope: {
        name: "contacts (every folder)",
        syncable: a.contacts(),
        truth: async () =>
          new Map(
            model()
              .contacts.live()
              .map((c) => [
                c.id,
                {
                  type: "user" as const,
                  parentKey: c.parentFolderId === CONTACTS_ROOT ? "default" : c.parentFolderId,
                  data: { displayName: c.displayName },
                },
              ]),
          ),
        project: (obj) => ({ displayName: data(obj).displayName }),
      },
    },
    {
      family: "contacts",
      composite: false,
      of: (x) => x.contactFolders(),
      scope: {
        name: "contact folders",
        syncable: a.contactFolders(),
        truth: async () =>
          new Map(
            model()
              .contactFolders.live()
              .map((f) => [f.id, folderEntry(f)]),
          ),
        project: (obj) => ({ displayName: data(obj).displayName }),
      },
    },
  ];
}

export interface HarnessOptions {
  families?: readonly Family[];
  /** Leave out composite scopes and expire every state now and then (410 family, rotating). */
  expiry?: boolean;
  /** Only the composite scopes (`mail()`, `contacts()`, the calendar list), or none of them. */
  kind?: "composite" | "plain";
  /** Random transient faults per request (0 = none). */
  chaosRate?: number;
  /** Emulator page size cap (default 3). */
  pageSize?: number;
}

/** Something to move, flag, expand and delete from the first step on (short histories are common). */
function seedModel(m: GraphModel): void {
  m.addCalendar("Work", "work");
  for (const [folder, subject, isRead] of [
    ["inbox", "a", false],
    ["inbox", "b", true],
    ["inbox", "c", false],
    ["archive", "a", true],
  ] as const)
    m.receive(folder, subject, { isRead });
  m.receive(m.addFolder("a", "inbox"), "b");
  m.addEvent("primary", "a", 0);
  m.addEvent("primary", "b", 3, 3);
  m.addEvent("work", "c", 12, 2);
  m.addContact("a");
  m.addContact("b", m.addContactFolder("a"));
}

/** A harness over a running emulator; each history resets it. */
export function graphHarness(
  emulator: GraphEmulator,
  options: HarnessOptions = {},
): ConformanceHarness<GraphOp> {
  let seed = 1;
  const modes = ["syncStateNotFound", "resyncRequired", "syncStateInvalid", "location"] as const;
  return {
    name: `graph${options.families ? ` [${options.families.join(",")}]` : ""}${options.kind ? ` ${options.kind}` : ""}${options.expiry ? " (expiry)" : ""}${options.chaosRate ? " (faults)" : ""}`,
    mutation: graphOps(options.families),
    async setup() {
      const n = seed++;
      emulator.reset();
      // Vary what Graph is allowed to do between histories: sparse updates, empty pages.
      const variants: EmulatorOptions[] = [
        {},
        { sparse: "read" },
        { sparse: "all", emptyPageEvery: 3 },
        { emptyPageEvery: 2 },
      ];
      emulator.options = { maxPageSize: options.pageSize ?? 3, ...variants[n % variants.length] };
      seedModel(emulator.model);
      if (options.chaosRate) emulator.chaos(n, options.chaosRate);
      const accounts: GraphAccount[] = [];
      const open = (user?: string) => {
        const x = createGraphAccount({
          baseUrl: emulator.baseUrl,
          accessToken: "test-token",
          pageSize: 3,
          user,
          retry: { retries: 4, minDelayMs: 1, maxDelayMs: 20 },
        });
        accounts.push(x);
        return x;
      };
      const a = open();
      const scopes = allScopes(emulator, a)
        .filter((s) => !options.families || options.families.includes(s.family))
        .filter((s) => !(options.expiry || options.kind === "plain") || !s.composite)
        .filter((s) => options.kind !== "composite" || s.composite)
        .map(
          (s): ConformanceScope => ({
            ...s.scope,
            // A restarted process: a new account, nothing kept in memory.
            reopen: () => s.of(open()),
            // The same scope of another mailbox on the same server: another identity.
            foreignState: () => s.of(open("someone-else")).sync({}),
            // A delta token the server never issued (restored from an older snapshot).
            aheadState: s.composite
              ? undefined
              : async () => aheadOf(await s.scope.syncable.sync({}), s.scope.syncable),
          }),
        );
      let expiries = 0;
      return {
        scopes,
        apply: async (op) => applyOp(emulator.model, op),
        expireStates: options.expiry
          ? async () => emulator.model.expire(modes[expiries++ % modes.length])
          : undefined,
        injectFault: (kind) =>
          emulator.inject(
            kind === "invalid"
              ? // A request that carries a state token: a listing from scratch is never refused.
                {
                  path: /delta$/,
                  query: /\$(delta|skip)token=./,
                  status: 410,
                  code: "syncStateNotFound",
                }
              : {
                  path: /delta$/,
                  status: 503,
                  code: "ServiceUnavailable",
                  headers: { "retry-after": "0" },
                },
          ),
        teardown: async () => {
          await Promise.all(accounts.map((x) => x.close()));
        },
      };
    },
  };
}

/** `state` with its delta token moved 1000 changes past the server's head. */
function aheadOf(state: string, syncable: Syncable): string {
  const env = decodeState(state, syncable.adapter, syncable.scope);
  const cursor = env.cursor as { l: string };
  const url = new URL(cursor.l);
  const token = JSON.parse(
    Buffer.from(url.searchParams.get("$deltatoken") ?? "", "base64url").toString(),
  );
  token.u += 1000;
  url.searchParams.set("$deltatoken", Buffer.from(JSON.stringify(token)).toString("base64url"));
  return encodeState({ ...env, cursor: { ...cursor, l: url.href } });
}
