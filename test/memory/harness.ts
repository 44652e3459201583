/**
 * The conformance harness for the memory adapter: two stores, a mutable folder tree, items
 * with read flags, and an address book; five scopes under test.
 */
import fc from "fast-check";
import {
  createMemoryServer,
  type MemoryServer,
  type MemoryServerOptions,
} from "../../adapters/memory/index.js";
import type { SyncObject } from "../../src/core/types.js";
import type { ConformanceHarness, ConformanceScope, MirrorEntry } from "../../src/testing/index.js";

export type MemoryOp =
  | { op: "createItem"; folder: number; subject: string; read: boolean }
  | { op: "updateItem"; pick: number; subject: string }
  | { op: "deleteItem"; pick: number; soft: boolean }
  | { op: "moveItem"; pick: number; folder: number }
  | { op: "markRead"; pick: number; read: boolean }
  | { op: "createFolder"; parent: number; name: string }
  | { op: "renameFolder"; pick: number; name: string }
  | { op: "moveFolder"; pick: number; parent: number }
  | { op: "deleteFolder"; pick: number }
  | { op: "addUser"; name: string }
  | { op: "updateUser"; pick: number; name: string }
  | { op: "removeUser"; pick: number };

const word = fc.constantFrom("alpha", "beta", "gamma", "delta", "omega", "x");
const pick = fc.nat(50);

export const memoryOp: fc.Arbitrary<MemoryOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("createItem" as const),
      folder: pick,
      subject: word,
      read: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("updateItem" as const), pick, subject: word }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("deleteItem" as const), pick, soft: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("moveItem" as const), pick, folder: pick }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("markRead" as const), pick, read: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("createFolder" as const), parent: pick, name: word }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("renameFolder" as const), pick, name: word }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("moveFolder" as const), pick, parent: pick }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("deleteFolder" as const), pick }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("addUser" as const), name: word }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("updateUser" as const), pick, name: word }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("removeUser" as const), pick }) },
);

const at = <T>(list: T[], n: number): T | undefined =>
  list.length ? list[n % list.length] : undefined;

/** Applies one op; ops that make no sense right now (nothing to pick) do nothing. */
export function applyMemoryOp(server: MemoryServer, op: MemoryOp, keep: ReadonlySet<string>): void {
  const folders = server.stores().flatMap((s) => server.store(s).folders());
  const items = server.allItems();
  const users = server.users();
  switch (op.op) {
    case "createItem": {
      const f = at(folders, op.folder);
      if (f) server.folder(f.sourcekey).createItem({ subject: op.subject }, { read: op.read });
      return;
    }
    case "updateItem": {
      const i = at(items, op.pick);
      if (i)
        server.updateItem(i.sourcekey, { subject: op.subject, rev: Number(i.fields.rev ?? 0) + 1 });
      return;
    }
    case "deleteItem": {
      const i = at(items, op.pick);
      if (i) server.deleteItem(i.sourcekey, { soft: op.soft });
      return;
    }
    case "moveItem": {
      const i = at(items, op.pick);
      const sameStore = folders.filter(
        (f) =>
          i &&
          server.folder(f.sourcekey).parentKey !== undefined &&
          storeOf(server, f.sourcekey) === i.store,
      );
      const f = at(sameStore, op.folder);
      if (i && f) server.moveItem(i.sourcekey, f.sourcekey);
      return;
    }
    case "markRead": {
      const i = at(items, op.pick);
      if (i) server.markRead(i.sourcekey, op.read);
      return;
    }
    case "createFolder": {
      const parent = at(folders, op.parent);
      if (parent) server.folder(parent.sourcekey).createFolder({ name: op.name });
      return;
    }
    case "renameFolder": {
      const f = at(folders, op.pick);
      if (f) server.store(storeOf(server, f.sourcekey)).renameFolder(f.sourcekey, op.name);
      return;
    }
    case "moveFolder": {
      const f = at(
        folders.filter((x) => !keep.has(x.sourcekey)),
        op.pick,
      );
      if (!f) return;
      const store = storeOf(server, f.sourcekey);
      const targets = [
        server.store(store).subtree.sourcekey,
        ...folders
          .filter(
            (x) =>
              storeOf(server, x.sourcekey) === store && !isBelow(server, x.sourcekey, f.sourcekey),
          )
          .map((x) => x.sourcekey),
      ];
      const target = at(targets, op.parent);
      if (target && target !== f.sourcekey) server.store(store).moveFolder(f.sourcekey, target);
      return;
    }
    case "deleteFolder": {
      const f = at(
        folders.filter(
          (x) => !keep.has(x.sourcekey) && ![...keep].some((k) => isBelow(server, k, x.sourcekey)),
        ),
        op.pick,
      );
      if (f) server.store(storeOf(server, f.sourcekey)).deleteFolder(f.sourcekey);
      return;
    }
    case "addUser":
      server.addUser({ name: op.name });
      return;
    case "updateUser": {
      const u = at(users, op.pick);
      if (u) server.updateUser(u.sourcekey, { name: op.name, rev: Number(u.fields.rev ?? 0) + 1 });
      return;
    }
    case "removeUser": {
      const u = at(users, op.pick);
      if (u) server.removeUser(u.sourcekey);
      return;
    }
  }
}

function storeOf(server: MemoryServer, folderKey: string): string {
  return server.stores().find((s) =>
    server
      .store(s)
      .folders()
      .some((f) => f.sourcekey === folderKey),
  ) as string;
}

/** True when `key` is `ancestor` or below it. */
function isBelow(server: MemoryServer, key: string, ancestor: string): boolean {
  for (let k: string | undefined = key; k !== undefined; k = server.folder(k).parentKey) {
    if (k === ancestor) return true;
  }
  return false;
}

const itemProjection = {
  project: (obj: SyncObject) => (obj.data as { fields: unknown }).fields,
  readOf: (obj: SyncObject) => (obj.data as { read: boolean }).read,
};

/** Builds the harness; `mutate` lets a test break the server or wrap its scopes. */
export function memoryHarness(
  options: MemoryServerOptions & { wrap?: (scope: ConformanceScope) => ConformanceScope } = {},
): ConformanceHarness<MemoryOp> {
  return {
    name: "memory",
    mutation: memoryOp,
    async setup() {
      const server = createMemoryServer({
        pageSize: options.pageSize ?? 3,
        retention: options.retention,
        readAhead: options.readAhead,
      });
      const alice = server.createStore("alice");
      const bob = server.createStore("bob");
      const inbox = alice.createFolder({ name: "Inbox", kind: "mail" });
      alice.createFolder({ name: "Calendar", kind: "calendar" });
      bob.createFolder({ name: "Inbox", kind: "mail" });
      inbox.createItem({ subject: "welcome" });
      server.addUser({ name: "alice" });
      const keep = new Set([inbox.sourcekey]);
      const items = (list: ReturnType<MemoryServer["allItems"]>) =>
        new Map<string, MirrorEntry>(
          list.map((i) => [
            i.sourcekey,
            { type: "item", parentKey: i.parentKey, data: i.fields, read: i.read },
          ]),
        );
      const scopes: ConformanceScope[] = [
        {
          name: "folder Inbox",
          syncable: inbox,
          truth: async () =>
            items(server.allItems().filter((i) => i.parentKey === inbox.sourcekey)),
          ...itemProjection,
        },
        {
          name: "store alice",
          syncable: alice.items,
          truth: async () => items(server.allItems().filter((i) => i.store === "alice")),
          ...itemProjection,
        },
        {
          name: "server",
          syncable: server,
          truth: async () => items(server.allItems()),
          ...itemProjection,
        },
        {
          name: "hierarchy alice",
          syncable: alice.subtree.hierarchy,
          truth: async () =>
            new Map(
              alice.folders().map((f) => [
                f.sourcekey,
                {
                  type: "folder" as const,
                  parentKey: f.parentKey,
                  data: { name: f.name, kind: f.kind },
                },
              ]),
            ),
        },
        {
          name: "gab",
          syncable: server.gab,
          truth: async () =>
            new Map(
              server.users().map((u) => [u.sourcekey, { type: "user" as const, data: u.fields }]),
            ),
          project: (obj) => (obj.data as { fields: unknown }).fields,
        },
      ];
      return {
        scopes: options.wrap ? scopes.map(options.wrap) : scopes,
        apply: async (op) => applyMemoryOp(server, op, keep),
        expireStates: async () => server.compact(),
        teardown: async () => {},
      };
    },
  };
}
