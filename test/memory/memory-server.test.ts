import { describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import {
  ArgumentError,
  NotFoundError,
  type Notification,
  StateInvalidError,
} from "../../src/index.js";

const setup = (opts = {}) => {
  const server = createMemoryServer(opts);
  const store = server.createStore("alice");
  const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
  const archive = store.createFolder({ name: "Archive", kind: "mail" });
  return { server, store, inbox, archive };
};

const log = () => {
  const calls: unknown[][] = [];
  return {
    calls,
    importer: {
      update: (o: { sourcekey: string }, f: { created: boolean }) =>
        void calls.push(["update", o.sourcekey, f.created]),
      delete: (o: { sourcekey: string }, f: { soft: boolean }) =>
        void calls.push(["delete", o.sourcekey, f.soft]),
      read: (o: { sourcekey: string }, r: boolean) => void calls.push(["read", o.sourcekey, r]),
    },
  };
};

describe("memory server", () => {
  it("exports only the latest version, read-only changes through read(), soft deletes as soft", async () => {
    const { server, inbox } = setup();
    const a = inbox.createItem({ v: 1 });
    const b = inbox.createItem({ v: 1 });
    const c = inbox.createItem({ v: 1 });
    const first = log();
    const state = await inbox.sync(first.importer);
    expect(first.calls).toEqual([
      ["update", a, true],
      ["update", b, true],
      ["update", c, true],
    ]);
    server.updateItem(a, { v: 2 });
    server.updateItem(a, { v: 3 });
    server.markRead(b, true);
    server.deleteItem(c, { soft: true });
    const d = inbox.createItem({ v: 1 });
    server.deleteItem(d);
    const next = log();
    const data: unknown[] = [];
    await inbox.sync(
      {
        ...next.importer,
        update: (o, f) => {
          data.push(o.data);
          next.importer.update(o, f);
        },
      },
      state,
    );
    expect(next.calls).toEqual([
      ["update", a, false],
      ["read", b, true],
      ["delete", c, true],
      ["delete", d, false],
    ]);
    expect(data).toEqual([{ fields: { v: 3 }, read: false }]);
  });

  it("moves: folder scopes see delete + create, the server scope a move (or delete + create)", async () => {
    const { server, inbox, archive } = setup();
    const a = inbox.createItem({ v: 1 });
    const [si, sa, ss] = [await inbox.sync({}), await archive.sync({}), await server.sync({})];
    server.moveItem(a, archive.sourcekey);
    const i = log();
    await inbox.sync(i.importer, si);
    expect(i.calls).toEqual([["delete", a, false]]);
    const r = log();
    await archive.sync(r.importer, sa);
    expect(r.calls).toEqual([["update", a, true]]);
    const moved: unknown[] = [];
    await server.sync(
      { moved: (o, f) => void moved.push([o.sourcekey, o.parentKey, f.fromParentKey]) },
      ss,
    );
    expect(moved).toEqual([[a, archive.sourcekey, inbox.sourcekey]]);
  });

  it("compact() and retention make older states fail with StateInvalidError", async () => {
    const { server, inbox } = setup();
    inbox.createItem({});
    const state = await inbox.sync({});
    server.compact();
    await expect(inbox.sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
    const fresh = await inbox.sync({});
    await expect(inbox.sync({}, fresh)).resolves.toBeTypeOf("string");

    const r = setup({ retention: 10 });
    const old = await r.inbox.sync({});
    for (let n = 0; n < 200; n++) r.inbox.createItem({ n });
    await expect(r.inbox.sync({}, old)).rejects.toBeInstanceOf(StateInvalidError);
  });

  it("folder deletes cascade into the hierarchy and item scopes; a deleted folder can't be synced", async () => {
    const { server, store, inbox } = setup();
    const sub = inbox.createFolder({ name: "Sub" });
    const item = sub.createItem({});
    const h0 = await store.subtree.syncHierarchy({});
    const s0 = await server.sync({});
    store.deleteFolder(inbox.sourcekey);
    const h = log();
    await store.subtree.syncHierarchy(h.importer, h0);
    expect(h.calls).toEqual([
      ["delete", sub.sourcekey, false],
      ["delete", inbox.sourcekey, false],
    ]);
    const s = log();
    await server.sync(s.importer, s0);
    expect(s.calls).toEqual([["delete", item, false]]);
    await expect(sub.sync({})).rejects.toBeInstanceOf(NotFoundError);
  });

  it("notifications: exactly the right events at folder, store and server level", () => {
    const { server, store, inbox, archive } = setup();
    const got: Record<string, string[]> = { folder: [], store: [], server: [], filtered: [] };
    const fmt = (n: Notification) => `${n.objectType}:${n.eventType}:${n.object.sourcekey}`;
    const subs = [
      inbox.subscribe((n) => void got.folder?.push(fmt(n))),
      store.subscribe((n) => void got.store?.push(fmt(n))),
      server.subscribe({ update: (n) => void got.server?.push(fmt(n)) }),
      server.subscribe((n) => void got.filtered?.push(fmt(n)), {
        objectTypes: ["item"],
        eventTypes: ["deleted"],
      }),
    ];
    const a = inbox.createItem({});
    server.moveItem(a, archive.sourcekey);
    server.deleteItem(a);
    const u = server.addUser({ name: "x" });
    for (const s of subs) s.unsubscribe();
    inbox.createItem({});
    expect(got.folder).toEqual([`item:created:${a}`, `item:deleted:${a}`]);
    expect(got.store).toEqual([`item:created:${a}`, `item:updated:${a}`, `item:deleted:${a}`]);
    expect(got.server).toEqual([
      `item:created:${a}`,
      `item:updated:${a}`,
      `item:deleted:${a}`,
      `user:created:${u}`,
    ]);
    expect(got.filtered).toEqual([`item:deleted:${a}`]);
  });

  it("rejects bad filters and bad mutations with typed errors", () => {
    const { server, store, inbox } = setup();
    expect(() => server.subscribe(() => {}, { objectTypes: ["mailbox" as "item"] })).toThrow(
      ArgumentError,
    );
    expect(() => server.deleteItem("nope")).toThrow(NotFoundError);
    expect(() =>
      store.moveFolder(inbox.sourcekey, inbox.createFolder({ name: "c" }).sourcekey),
    ).toThrow(ArgumentError);
    expect(() => createMemoryServer({ pageSize: 0 })).toThrow(ArgumentError);
    expect(() => server.createStore("alice")).toThrow(ArgumentError);
  });

  it("a snapshot restores a server whose old states still sync incrementally", async () => {
    const { server, inbox } = setup();
    const a = inbox.createItem({ v: 1 });
    const state = await server.sync({});
    server.markRead(a, true);
    const copy = createMemoryServer({ from: JSON.parse(JSON.stringify(server.snapshot())) });
    const l = log();
    await copy.sync(l.importer, state);
    expect(l.calls).toEqual([["read", a, true]]);
    expect(copy.allItems()).toEqual(server.allItems());
  });
});

describe("memory server compaction during a full sync", () => {
  it("a full sync resumed across an older compaction keeps going; one compacted mid-round is invalid", async () => {
    const { server, inbox } = setup({ pageSize: 1 });
    inbox.createItem({ n: 1 });
    inbox.createItem({ n: 2 });
    const gone = inbox.createItem({ n: 3 });
    server.deleteItem(gone);
    server.compact();
    const checkpoints: string[] = [];
    const ctl = new AbortController();
    await inbox
      .sync({ update: () => ctl.abort() }, undefined, {
        signal: ctl.signal,
        onCheckpoint: (s) => void checkpoints.push(s),
      })
      .catch(() => {});
    await inbox.sync({}, undefined, { onCheckpoint: (s) => void checkpoints.push(s) });
    // The first checkpoint's cursor is below the floor, but the compaction predates the round.
    await expect(inbox.sync({}, checkpoints[0])).resolves.toBeTypeOf("string");
    server.compact();
    await expect(inbox.sync({}, checkpoints[0])).rejects.toBeInstanceOf(StateInvalidError);
  });
});
