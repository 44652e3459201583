/**
 * The conformance-kit harness of the Aurinko adapter: one emulator, six scopes (mail, a
 * calendar, contacts, a task list, the calendar list, the task lists); mutations go through the
 * emulator's model (another client), never through the adapter. Values come from a small domain
 * so that updates revert to earlier values.
 */
import fc from "fast-check";
import {
  type AurinkoAccount,
  CONTACTS_KEY,
  createAurinkoAccount,
  MAIL_KEY,
} from "../../adapters/aurinko/index.js";
import { decodeState, encodeState } from "../../src/core/state.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { SyncObject } from "../../src/core/types.js";
import type {
  ConformanceHarness,
  ConformanceScope,
  MirrorEntry,
} from "../../src/testing/harness.js";
import { type AurinkoEmulator, aheadToken } from "./emulator.js";
import type { AurinkoModel } from "./emulator-model.js";

const CALENDAR = "primary";
const TASKLIST = "list1";

type Coll = "email" | "calendar" | "contacts" | "tasks";

export type AurinkoOp =
  | { t: "insert"; c: Coll; v: string; flag: boolean }
  | { t: "update"; c: Coll; pick: number; v: string; flag: boolean }
  | { t: "delete"; c: Coll; pick: number }
  | { t: "folder"; f: "calendars" | "tasklists"; v: string }
  | { t: "renameFolder"; f: "calendars" | "tasklists"; pick: number; v: string }
  | { t: "removeFolder"; f: "calendars" | "tasklists"; pick: number };

export type Family = Coll | "folders";

const value = fc.constantFrom("a", "b", "c");
const pick = fc.nat(20);
const coll = (families: readonly Family[]) =>
  fc.constantFrom(
    ...(["email", "calendar", "contacts", "tasks"] as const).filter((c) => families.includes(c)),
  );
const folderKind = fc.constantFrom("calendars" as const, "tasklists" as const);

/** Random ops over the given families. */
export function aurinkoOps(families: readonly Family[]): fc.Arbitrary<AurinkoOp> {
  const items = families.some((f) => f !== "folders");
  const arbs: fc.WeightedArbitrary<AurinkoOp>[] = [];
  if (items) {
    const c = coll(families);
    arbs.push(
      {
        weight: 3,
        arbitrary: fc.record({
          t: fc.constant("insert" as const),
          c,
          v: value,
          flag: fc.boolean(),
        }),
      },
      {
        weight: 4,
        arbitrary: fc.record({
          t: fc.constant("update" as const),
          c,
          pick,
          v: value,
          flag: fc.boolean(),
        }),
      },
      { weight: 2, arbitrary: fc.record({ t: fc.constant("delete" as const), c, pick }) },
    );
  }
  if (families.includes("folders")) {
    arbs.push(
      {
        weight: 1,
        arbitrary: fc.record({ t: fc.constant("folder" as const), f: folderKind, v: value }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          t: fc.constant("renameFolder" as const),
          f: folderKind,
          pick,
          v: value,
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ t: fc.constant("removeFolder" as const), f: folderKind, pick }),
      },
    );
  }
  return fc.oneof(...arbs);
}

const COLLECTION: Record<Coll, string> = {
  email: "email",
  calendar: `calendars/${CALENDAR}`,
  contacts: "contacts",
  tasks: `tasklists/${TASKLIST}`,
};

const DAY = "2024-06-0";

/** The record fields of a value (and a flag: unread / a later day / completed). */
function record(c: Coll, v: string, flag: boolean): Record<string, unknown> {
  switch (c) {
    case "email":
      return {
        subject: v,
        threadId: `t-${v}`,
        sysLabels: flag ? ["unread"] : [],
        folderId: "inbox",
      };
    case "calendar": {
      const day = flag ? 2 : 1;
      return {
        subject: v,
        start: { dateTime: `${DAY}${day}T10:00:00Z` },
        end: { dateTime: `${DAY}${day}T11:00:00Z` },
      };
    }
    case "contacts":
      return { name: { displayName: v } };
    case "tasks":
      return { title: v, status: flag ? "completed" : "notStarted" };
  }
}

function nth<T>(list: T[], n: number): T | undefined {
  return list.length ? list[n % list.length] : undefined;
}

function extraFolders(model: AurinkoModel, f: "calendars" | "tasklists"): string[] {
  const keep = f === "calendars" ? CALENDAR : TASKLIST;
  const ids = f === "calendars" ? [...model.calendars.keys()] : [...model.tasklists.keys()];
  return ids.filter((id) => id !== keep);
}

export function applyOp(model: AurinkoModel, op: AurinkoOp): void {
  switch (op.t) {
    case "insert":
      model.insert(COLLECTION[op.c], record(op.c, op.v, op.flag));
      return;
    case "update": {
      const r = nth(model.live(COLLECTION[op.c]), op.pick);
      if (r) model.update(COLLECTION[op.c], r.id, record(op.c, op.v, op.flag));
      return;
    }
    case "delete": {
      const r = nth(model.live(COLLECTION[op.c]), op.pick);
      if (r) model.remove(COLLECTION[op.c], r.id);
      return;
    }
    case "folder":
      if (op.f === "calendars") model.addCalendar(model.newId("cal-"), op.v);
      else model.addTasklist(model.newId("list-"), op.v);
      return;
    case "renameFolder": {
      const id = nth(extraFolders(model, op.f), op.pick);
      if (id && op.f === "calendars") model.renameCalendar(id, op.v);
      else if (id) model.renameTasklist(id, op.v);
      return;
    }
    case "removeFolder": {
      const id = nth(extraFolders(model, op.f), op.pick);
      if (id && op.f === "calendars") model.removeCalendar(id);
      else if (id) model.removeTasklist(id);
      return;
    }
  }
}

/** What the kit compares of an item. */
function project(c: Coll, d: Record<string, unknown>): unknown {
  switch (c) {
    case "email":
      return { subject: d.subject, threadId: d.threadId };
    case "calendar":
      return {
        subject: d.subject,
        start: (d.start as { dateTime?: string } | undefined)?.dateTime,
      };
    case "contacts":
      return { name: (d.name as { displayName?: string } | undefined)?.displayName };
    case "tasks":
      return { title: d.title, status: d.status };
  }
}

const PARENT: Record<Coll, string> = {
  email: MAIL_KEY,
  calendar: CALENDAR,
  contacts: CONTACTS_KEY,
  tasks: TASKLIST,
};

function unread(d: Record<string, unknown>): boolean {
  return ((d.sysLabels as string[] | undefined) ?? []).includes("unread");
}

export interface HarnessOptions {
  families?: readonly Family[];
  /** Random transient faults per request (0 = none). */
  chaosRate?: number;
  pageSize?: number;
}

/** A harness over a running emulator; each history resets it. */
export function aurinkoHarness(
  emulator: AurinkoEmulator,
  options: HarnessOptions = {},
): ConformanceHarness<AurinkoOp> {
  const families = options.families ?? ["email", "calendar", "contacts", "tasks", "folders"];
  let seed = 1;
  return {
    name: `aurinko [${families.join(",")}]${options.chaosRate ? " (faults)" : ""}`,
    mutation: aurinkoOps(families),
    async setup() {
      emulator.reset();
      emulator.options.pageSize = options.pageSize ?? 3;
      if (options.chaosRate) emulator.chaos(seed++, options.chaosRate);
      const open: AurinkoAccount[] = [];
      const make = (token: string) => {
        const a = createAurinkoAccount({
          baseUrl: emulator.url,
          accessToken: token,
          retry: { retries: 4, minDelayMs: 0, maxDelayMs: 1 },
          ready: { minDelayMs: 0, maxDelayMs: 1, timeoutMs: 1000 },
        });
        open.push(a);
        return a;
      };
      for (const token of ["alice", "bob"]) {
        const model = emulator.account(token);
        model.addCalendar(CALENDAR);
        model.addTasklist(TASKLIST);
      }
      const model = emulator.account("alice");
      const alice = make("alice");

      const scopeOf = (a: AurinkoAccount, c: Coll | "calendars" | "tasklists"): Syncable => {
        switch (c) {
          case "email":
            return a.mail();
          case "calendar":
            return a.calendar(CALENDAR);
          case "contacts":
            return a.contacts();
          case "tasks":
            return a.tasks(TASKLIST);
          case "calendars":
            return a.calendarList();
          case "tasklists":
            return a.taskLists();
        }
      };
      /** A complete state of the scope, made by a throwaway account of `token`. */
      const completeState = async (token: string, c: Coll | "calendars" | "tasklists") =>
        scopeOf(make(token), c).sync({});

      const itemScope = (c: Coll): ConformanceScope => ({
        name: c,
        syncable: scopeOf(alice, c),
        truth: async () =>
          new Map(
            model.live(COLLECTION[c]).map((r): [string, MirrorEntry] => [
              r.id,
              {
                type: "item",
                parentKey: PARENT[c],
                data: project(c, r.data),
                ...(c === "email" ? { read: !unread(r.data) } : {}),
              },
            ]),
          ),
        project: (obj: SyncObject) => project(c, obj.data as Record<string, unknown>),
        ...(c === "email"
          ? { readOf: (obj: SyncObject) => !unread(obj.data as Record<string, unknown>) }
          : {}),
        reopen: () => scopeOf(make("alice"), c),
        foreignState: () => completeState("bob", c),
        aheadState: async () => {
          const state = await completeState("alice", c);
          const scope = scopeOf(alice, c).scope;
          const env = decodeState(state, "aurinko", scope);
          const cursor = env.cursor as { updated: string; deleted: string };
          return encodeState({
            ...env,
            cursor: { updated: aheadToken(cursor.updated), deleted: aheadToken(cursor.deleted) },
          });
        },
      });
      const folderScope = (f: "calendars" | "tasklists"): ConformanceScope => ({
        name: f,
        syncable: scopeOf(alice, f),
        truth: async () => {
          const list =
            f === "calendars"
              ? [...model.calendars.values()].map((x) => [x.id, x.name] as const)
              : [...model.tasklists.values()].map((x) => [x.id, x.title] as const);
          return new Map(
            list.map(([id, name]): [string, MirrorEntry] => [id, { type: "folder", data: name }]),
          );
        },
        project: (obj: SyncObject) => {
          const d = obj.data as { name?: string; title?: string };
          return f === "calendars" ? d.name : d.title;
        },
        reopen: () => scopeOf(make("alice"), f),
        foreignState: () => completeState("bob", f),
      });
      const scopes: ConformanceScope[] = [];
      for (const c of ["email", "calendar", "contacts", "tasks"] as const) {
        if (families.includes(c)) scopes.push(itemScope(c));
      }
      if (families.includes("folders"))
        scopes.push(folderScope("calendars"), folderScope("tasklists"));
      return {
        scopes,
        apply: async (op) => applyOp(model, op),
        // A hierarchy is a listing diffed against the last one: no token of it can expire.
        ...(families.includes("folders") ? {} : { expireStates: async () => model.expire() }),
        injectFault: (kind) => emulator.faultNextSync(kind),
        teardown: async () => {
          await Promise.all(open.map((a) => a.close()));
        },
      };
    },
  };
}
