/**
 * The SQLite mirror as the app's copy in two-way sync: local edits and their outbox entries in
 * one transaction, pulls that leave pending rows alone, write-back of push results.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createMemoryServer, type MemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { StateError } from "../../src/core/errors.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createSqliteMirror, type SqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { push } from "../../src/two-way/push.js";

const SOURCE = "memory:alice";

async function setup() {
  const server = createMemoryServer();
  const store = server.createStore("alice");
  const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
  const keys = [inbox.createItem({ s: "a" }), inbox.createItem({ s: "b" })];
  const db = new Database(":memory:");
  const target = memoryWriteTarget(server, inbox.sourcekey);
  const mirror = createSqliteMirror(db, { source: SOURCE, keyFor: target.keyFor });
  const states = createMemoryStateStore();
  const pull = () => runSync(store.items, { ...mirror.callbacks, store: states, key: SOURCE });
  const pushAll = (policy?: "ask" | "client-wins" | "server-wins") =>
    push(target, mirror.outbox, { pair: SOURCE, policy, ...mirror.pushCallbacks });
  await pull();
  return { server, store, inbox, keys, db, target, mirror, states, pull, pushAll };
}

function same(mirror: SqliteMirror, server: MemoryServer) {
  const rows = mirror
    .rows()
    .map((r) => ({ key: r.sourcekey, parent: r.parentKey, data: r.data, read: r.isRead }));
  const items = server
    .allItems()
    .map((i) => ({
      key: i.sourcekey,
      parent: i.parentKey,
      data: { fields: i.fields, read: i.read },
      read: i.read,
    }))
    .sort((a, b) => (a.key < b.key ? -1 : 1));
  expect(rows).toEqual(items);
}

describe("SQLite mirror, two-way", () => {
  it("a pulled duplicate merged into a create's row hands over its pending edits durably", async () => {
    const dir = mkdtempSync(join(tmpdir(), "deltasync-mirror-merge-"));
    try {
      const file = join(dir, "m.sqlite");
      const server = createMemoryServer();
      const store = server.createStore("alice");
      const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
      const pulled = inbox.createItem({ s: "pulled" });
      const target = memoryWriteTarget(server, inbox.sourcekey);
      const open = () => createSqliteMirror(file, { source: SOURCE, keyFor: target.keyFor });
      const mirror = open();
      await runSync(store.items, {
        ...mirror.callbacks,
        store: createMemoryStateStore(),
        key: SOURCE,
      });
      const created = mirror.edits.create({
        data: { fields: { s: "new" } },
        parentKey: inbox.sourcekey,
      });
      const duplicate = mirror.get(pulled)?.id as string;
      mirror.edits.update(duplicate, { fields: { s: "edited" }, read: false });
      const create = (await mirror.outbox.pending(SOURCE)).find((e) => e.kind === "create");
      // The server answered the create with the key the pull had already delivered.
      await mirror.pushCallbacks.onPushed(
        create as NonNullable<typeof create>,
        { sourcekey: pulled, changeKey: "1" },
        { last: true },
      );
      const owners = async (m: SqliteMirror) =>
        (await m.outbox.pending(SOURCE)).map((e) => [e.kind, e.localId]);
      expect(await owners(mirror)).toEqual([
        ["create", created],
        ["update", created],
      ]);
      mirror.close();
      const reopened = open();
      expect(await owners(reopened)).toEqual([
        ["create", created],
        ["update", created],
      ]);
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("local edits reach the server; results are written back; rows keep their id", async () => {
    const { server, keys, mirror, pull, pushAll, inbox } = await setup();
    const a = mirror.get(keys[0] as string);
    mirror.edits.update(a?.id as string, { fields: { s: "a2" }, read: false });
    mirror.edits.markRead(mirror.get(keys[1] as string)?.id as string, true);
    const created = mirror.edits.create({
      data: { fields: { s: "new" } },
      parentKey: inbox.sourcekey,
    });
    expect(mirror.rows().find((r) => r.id === created)).toMatchObject({
      sourcekey: `local:${created}`,
      changeKey: null,
      updatedAtSource: "local",
    });
    expect((await mirror.outbox.pending(SOURCE)).map((e) => e.kind)).toEqual([
      "update",
      "read",
      "create",
    ]);
    expect(await pushAll()).toMatchObject({ status: "done", pushed: 3 });
    expect(server.item(`local:${created}`).fields).toEqual({ s: "new" });
    const after = mirror.get(keys[0] as string);
    expect(after?.id).toBe(a?.id);
    expect(after?.changeKey).toBe(server.item(keys[0] as string).changeKey);
    await pull();
    same(mirror, server);
    expect(mirror.get(`local:${created}`)?.id).toBe(created);
  });

  it("a pull leaves a row with a pending edit alone; the push then meets the conflict", async () => {
    const { server, keys, mirror, pull, pushAll } = await setup();
    const id = mirror.get(keys[0] as string)?.id as string;
    mirror.edits.update(id, { fields: { s: "mine" }, read: false });
    server.updateItem(keys[0] as string, { s: "theirs" });
    await pull();
    expect(mirror.get(keys[0] as string)?.data).toEqual({ fields: { s: "mine" }, read: false });
    const paused = await pushAll("ask");
    expect(paused.status).toBe("paused");
    await mirror.outbox.resolve(paused.conflict?.id as string, "remote");
    await pushAll("ask");
    expect(mirror.get(keys[0] as string)?.data).toEqual({ fields: { s: "theirs" }, read: false });
    expect(mirror.get(keys[0] as string)?.id).toBe(id);
    await pull();
    same(mirror, server);
  });

  it("a full sync (reset) keeps rows whose create is not pushed yet", async () => {
    const { server, mirror, pull, pushAll, inbox, states } = await setup();
    const id = mirror.edits.create({
      data: { fields: { s: "pending" } },
      parentKey: inbox.sourcekey,
    });
    // Force a full sync from nothing: the sweep must not drop the pending row.
    for (const k of await states.keys()) await states.delete(k);
    await pull();
    expect(mirror.rows().some((r) => r.id === id)).toBe(true);
    mirror.clear();
    expect(mirror.rows().map((r) => r.id)).toEqual([id]);
    for (const k of await states.keys()) await states.delete(k);
    await pushAll();
    await pull();
    same(mirror, server);
  });

  it("the row change and its outbox entry commit together or not at all", async () => {
    const { keys, mirror, db } = await setup();
    const id = mirror.get(keys[0] as string)?.id as string;
    db.prepare("INSERT INTO mirror_outbox (key, state, saved_at) VALUES (?, ?, ?)").run(
      `outbox:${SOURCE}`,
      "{not json",
      "now",
    );
    expect(() => mirror.edits.update(id, { fields: { s: "lost?" }, read: false })).toThrow(
      StateError,
    );
    expect(mirror.get(keys[0] as string)?.data).toEqual({ fields: { s: "a" }, read: false });
  });

  it("a pushed edit's echo does not come back through the pull", async () => {
    const { server, keys, mirror, pull, pushAll } = await setup();
    const id = mirror.get(keys[0] as string)?.id as string;
    mirror.edits.update(id, { fields: { s: "mine" }, read: false });
    await pushAll();
    const before = mirror.get(keys[0] as string);
    await new Promise((r) => setTimeout(r, 2));
    await pull();
    expect(mirror.get(keys[0] as string)?.updatedLocally).toBe(before?.updatedLocally);
    same(mirror, server);
  });
});
