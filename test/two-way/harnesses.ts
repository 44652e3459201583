/**
 * Two-way conformance harnesses (`checkTwoWayConformance`) for the memory server, CalDAV
 * servers and the Google Calendar emulator.
 */
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import type { TwoWayHarness } from "../../src/testing/two-way-harness.js";
import { stableJson } from "../../src/two-way/log.js";

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
