/**
 * The conformance harness for the memory adapter: two stores, a mutable folder tree, items
 * with read flags, and an address book; five scopes under test.
 */
import fc from "fast-check";
import {
  createMemoryServer,
  type MemoryServer,
  type MemoryServerOptions,
  type MemoryStore,
} from "../../adapters/memory/index.js";
import { StateInvalidError, TransientError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
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

const word = fc.constantFrom("alpha", "beta", "gamma");
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
export function applyMemoryOp(
  server: MemoryServer,
  op: MemoryOp,
  keep: ReadonlySet<string>,
  undeletable: ReadonlySet<string> = keep,
): void {
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
      // A small value domain: updates often revert an item to what an earlier state saw.
      if (i) server.updateItem(i.sourcekey, { subject: op.subject });
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
          (x) =>
            !undeletable.has(x.sourcekey) &&
            ![...undeletable].some((k) => isBelow(server, k, x.sourcekey)),
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
      if (u) server.updateUser(u.sourcekey, { name: op.name });
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

/** The server every history starts from (deterministic: a second one has the same keys). */
function buildServer(options: MemoryServerOptions) {
  const server = createMemoryServer({
    pageSize: options.pageSize ?? 3,
    retention: options.retention,
    readAhead: options.readAhead,
  });
  const alice = server.createStore("alice");
  const bob = server.createStore("bob");
  const inbox = alice.createFolder({ name: "Inbox", kind: "mail" });
  alice.createFolder({ name: "Calendar", kind: "calendar" });
  // A sub-folder whose own hierarchy is a scope: it may be renamed and moved, not deleted.
  const projects = alice.createFolder({ name: "Projects", kind: "mail" });
  projects.createFolder({ name: "2026" });
  bob.createFolder({ name: "Inbox", kind: "mail" });
  inbox.createItem({ subject: "welcome" });
  server.addUser({ name: "alice" });
  return { server, alice, inbox, projects };
}

type Built = ReturnType<typeof buildServer>;

/** Every scope under test, by name, over one built server. */
function scopesOf({ server, alice, inbox, projects }: Built): Record<string, Syncable> {
  return {
    "folder Inbox": inbox,
    "store alice": alice.items,
    server,
    "hierarchy alice": alice.subtree.hierarchy,
    "hierarchy Projects": projects.hierarchy,
    gab: server.gab,
  };
}

/** A complete state of scope `name` from a server with the same keys but another identity. */
async function foreignState(options: MemoryServerOptions, name: string): Promise<string> {
  const other = scopesOf(buildServer(options))[name] as Syncable;
  return other.sync({});
}

/** A state of scope `name` from a later copy of `built` (restored from its snapshot, then changed). */
async function aheadState(built: Built, name: string, options: MemoryServerOptions) {
  const later = createMemoryServer({ ...options, from: built.server.snapshot() });
  const inbox = later.folder(built.inbox.sourcekey);
  inbox.createItem({ subject: "later" });
  later.folder(built.projects.sourcekey).createFolder({ name: "later" });
  later.addUser({ name: "later" });
  const copy: Built = {
    server: later,
    alice: later.store("alice"),
    inbox,
    projects: later.folder(built.projects.sourcekey),
  };
  return (scopesOf(copy)[name] as Syncable).sync({});
}

/** Builds the harness; `mutate` lets a test break the server or wrap its scopes. */
export function memoryHarness(
  options: MemoryServerOptions & { wrap?: (scope: ConformanceScope) => ConformanceScope } = {},
): ConformanceHarness<MemoryOp> {
  return {
    name: "memory",
    mutation: memoryOp,
    async setup() {
      const built = buildServer(options);
      const { server, alice, inbox, projects } = built;
      const keep = new Set([inbox.sourcekey]);
      const undeletable = new Set([inbox.sourcekey, projects.sourcekey]);
      const items = (list: ReturnType<MemoryServer["allItems"]>) =>
        new Map<string, MirrorEntry>(
          list.map((i) => [
            i.sourcekey,
            { type: "item", parentKey: i.parentKey, data: i.fields, read: i.read },
          ]),
        );
      // One-shot faults, as a server would answer the next request: consumed by the next round.
      let fault: "invalid" | "transient" | undefined;
      const faulty = (syncable: Syncable): Syncable =>
        new Proxy(syncable, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver);
            if (prop !== "exportChanges") return value;
            return (...args: Parameters<Syncable["exportChanges"]>) => {
              const kind = fault;
              fault = undefined;
              if (kind === "invalid") {
                return Promise.reject(new StateInvalidError("injected: state refused once"));
              }
              if (kind === "transient") {
                return Promise.reject(new TransientError("injected: 503 once", { status: 503 }));
              }
              return target.exportChanges(...args);
            };
          },
        });
      const syncables = Object.fromEntries(
        Object.entries(scopesOf(built)).map(([name, s]) => [name, faulty(s)]),
      );
      const folders = (list: ReturnType<MemoryStore["folders"]>) =>
        new Map(
          list.map((f) => [
            f.sourcekey,
            {
              type: "folder" as const,
              parentKey: f.parentKey,
              data: { name: f.name, kind: f.kind },
            },
          ]),
        );
      const below = (key: string, ancestor: string) =>
        key !== ancestor && isBelow(server, key, ancestor);
      const scope = (name: string, rest: Omit<ConformanceScope, "name" | "syncable">) => ({
        name,
        syncable: syncables[name] as Syncable,
        foreignState: () => foreignState(options, name),
        aheadState: () => aheadState(built, name, options),
        ...rest,
      });
      const scopes: ConformanceScope[] = [
        scope("folder Inbox", {
          truth: async () =>
            items(server.allItems().filter((i) => i.parentKey === inbox.sourcekey)),
          reopen: () => faulty(server.folder(inbox.sourcekey)),
          ...itemProjection,
        }),
        scope("store alice", {
          truth: async () => items(server.allItems().filter((i) => i.store === "alice")),
          ...itemProjection,
        }),
        scope("server", { truth: async () => items(server.allItems()), ...itemProjection }),
        scope("hierarchy alice", { truth: async () => folders(alice.folders()) }),
        scope("hierarchy Projects", {
          truth: async () =>
            folders(alice.folders().filter((f) => below(f.sourcekey, projects.sourcekey))),
          reopen: () => faulty(server.folder(projects.sourcekey).hierarchy),
        }),
        scope("gab", {
          truth: async () =>
            new Map(
              server.users().map((u) => [u.sourcekey, { type: "user" as const, data: u.fields }]),
            ),
          project: (obj) => (obj.data as { fields: unknown }).fields,
        }),
      ];
      return {
        scopes: options.wrap ? scopes.map(options.wrap) : scopes,
        apply: async (op) => applyMemoryOp(server, op, keep, undeletable),
        expireStates: async () => server.compact(),
        injectFault: (kind) => {
          fault = kind;
        },
        teardown: async () => {},
      };
    },
  };
}
