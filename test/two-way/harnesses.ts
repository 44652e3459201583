/**
 * Two-way conformance harnesses (`checkTwoWayConformance`) for the memory server, CalDAV
 * servers and the Google Calendar emulator.
 */
import { davWriteTarget, sameText } from "../../adapters/dav/dav-push.js";
import { createDavAccount } from "../../adapters/dav/index.js";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import type { TwoWayHarness } from "../../src/testing/two-way-harness.js";
import { stableJson } from "../../src/two-way/log.js";
import { basicAuth, DavTestClient, eventBody } from "../dav/dav-harness.js";
import type { GoogleEmulator } from "../google/emulator.js";
import { dayTime } from "../google/emulator-model.js";
import { account as googleAccount } from "../google/helpers.js";

const fieldsOf = (data: unknown) => (data as { fields?: Record<string, unknown> } | null)?.fields;

/** The memory server: two folders (moves), read flags, a store-wide item scope. */
export function memoryTwoWayHarness(): TwoWayHarness {
  return {
    name: "memory",
    moves: true,
    flags: true,
    async setup() {
      const server = createMemoryServer();
      const store = server.createStore("alice");
      const folders = [
        store.createFolder({ name: "F", kind: "mail" }).sourcekey,
        store.createFolder({ name: "G", kind: "mail" }).sourcekey,
      ];
      for (const s of ["a", "b", "c"]) server.folder(folders[0] as string).createItem({ s });
      return {
        syncable: store.items,
        target: memoryWriteTarget(server, folders[0] as string),
        folders,
        remote: {
          create: async (label, folder) => {
            server.folder(folder).createItem({ s: label });
          },
          update: async (key, label) => server.updateItem(key, { s: label }),
          delete: async (key) => server.deleteItem(key),
          move: async (key, folder) => server.moveItem(key, folder),
          setRead: async (key, isRead) => server.markRead(key, isRead),
        },
        list: async () => server.allItems().map((i) => i.sourcekey),
        teardown: async () => {},
      };
    },
    localData: (label) => ({ fields: { s: label } }),
    labelOf: (data) => fieldsOf(data)?.s as string | undefined,
    same: (a, b) => stableJson(fieldsOf(a)) === stableJson(fieldsOf(b)),
  };
}

export interface DavTwoWayServer {
  name: string;
  url: string;
  user?: string;
  password?: string;
  calendarHome: string;
}

const uidOf = (raw: string) => /^UID:(.*)$/m.exec(raw)?.[1]?.trim() ?? "";
const rawOf = (data: unknown) => (data as { raw?: string } | null)?.raw ?? "";
let collections = 0;

/** A CalDAV server: one fresh calendar per history, a second client over plain HTTP. */
export function davTwoWayHarness(server: DavTwoWayServer): TwoWayHarness {
  const auth = basicAuth(server.user, server.password);
  // UIDs unique per history (its collection's number) and per create.
  let uids = 0;
  return {
    name: server.name,
    async setup() {
      const client = new DavTestClient(server.url, auth);
      const n = ++collections;
      const collection = `${server.calendarHome}tw${process.pid}x${n}/`;
      await client.makeCalendar(collection);
      await client.put(`${collection}seed.ics`, eventBody(`seed-${n}`, "a"));
      const account = createDavAccount({
        url: server.url,
        username: server.user,
        password: server.password,
        retry: { retries: 0 },
      });
      const members = () => client.members(collection, false);
      return {
        syncable: account.collection(collection),
        target: davWriteTarget(account, collection),
        folders: [collection],
        remote: {
          create: async (label) => {
            const id = `r${n}-${++uids}`;
            await client.put(`${collection}${id}.ics`, eventBody(id, label));
          },
          update: async (key, label) => {
            const body = (await members()).get(key)?.body ?? "";
            await client.put(key, eventBody(uidOf(body), label));
          },
          delete: async (key) => {
            await client.send("DELETE", key);
          },
        },
        list: async () => [...(await members()).keys()],
        async teardown() {
          await account.close();
          await client.send("DELETE", collection);
        },
      };
    },
    localData: (label, previous, { localId }) => ({
      raw: eventBody(previous ? uidOf(rawOf(previous)) : `${localId}-${++uids}`, label),
    }),
    labelOf: (data) => /^SUMMARY:(.*)$/m.exec(rawOf(data))?.[1]?.trim(),
    same: (a, b) => sameText(rawOf(a), rawOf(b)),
  };
}

const summaryOf = (data: unknown) => (data as { summary?: string } | null)?.summary;

/** The Google Calendar emulator: one calendar, reset for every history. */
export function googleTwoWayHarness(emulator: GoogleEmulator): TwoWayHarness {
  return {
    name: "google emulator",
    async setup() {
      emulator.reset();
      const model = emulator.model;
      model.addCalendar("primary");
      model.insertEvent("primary", { summary: "a", day: 1 });
      const google = googleAccount(emulator, { retry: { retries: 0 } });
      const live = () => {
        const events = model.calendars.get("primary");
        return [...(events?.keys() ?? [])]
          .map((k) => events?.get(k))
          .filter((e) => e !== undefined && e.status !== "cancelled")
          .map((e) => e as NonNullable<typeof e>);
      };
      return {
        syncable: google.calendar("primary"),
        target: google.calendarWriteTarget("primary"),
        folders: ["primary"],
        remote: {
          create: async (label) => {
            model.insertEvent("primary", { summary: label, day: 3 });
          },
          update: async (key, label) => {
            model.updateEvent("primary", key, { summary: label });
          },
          delete: async (key) => {
            model.deleteEvent("primary", key);
          },
        },
        list: async () => live().map((e) => e.id),
        teardown: () => google.close(),
      };
    },
    localData: (label, previous) =>
      previous
        ? { ...(previous as object), summary: label }
        : { summary: label, start: dayTime(2), end: dayTime(2, 1) },
    labelOf: summaryOf,
    same: (a, b) => summaryOf(a) === summaryOf(b),
  };
}
