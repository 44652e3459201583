/** The example of docs/two-way.md, run as written (with an in-memory database). */
import Database from "better-sqlite3";
import { expect, it } from "vitest";
import { createMemoryServer, memoryWriteTarget } from "../../adapters/memory/index.js";
import { createSqliteMirror, createSqliteStateStore, push, runSync } from "../../src/index.js";

it("docs/two-way.md example", async () => {
  const server = createMemoryServer();
  const store = server.createStore("alice");
  const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
  const target = memoryWriteTarget(server, inbox.sourcekey);
  const pair = "memory:alice";
  const mirror = createSqliteMirror(new Database(":memory:"), {
    source: pair,
    keyFor: target.keyFor,
  });
  const states = createSqliteStateStore(mirror.db);
  const pull = () => runSync(store.items, { ...mirror.callbacks, store: states, key: pair });
  const pushAll = () => push(target, mirror.outbox, { pair, ...mirror.pushCallbacks });

  await pull();
  const id = mirror.edits.create({
    data: { fields: { subject: "from the app" } },
    parentKey: inbox.sourcekey,
  });
  await pushAll();
  const { sourcekey } = mirror.rows()[0] as { sourcekey: string };
  expect(server.item(sourcekey).fields).toEqual({ subject: "from the app" });
  server.updateItem(sourcekey, { subject: "edited elsewhere" });
  await pull();
  expect(mirror.get(sourcekey)?.data).toMatchObject({ fields: { subject: "edited elsewhere" } });
  mirror.edits.update(id, { fields: { subject: "mine" } });
  server.updateItem(sourcekey, { subject: "theirs" });
  const paused = await pushAll();
  expect(paused.status).toBe("paused");
  await mirror.outbox.resolve(paused.conflict?.id as string, "local");
  expect(await pushAll()).toMatchObject({ status: "done", pushed: 1 });
  expect(server.item(sourcekey).fields).toEqual({ subject: "mine" });
  await pull();
  expect(mirror.get(sourcekey)?.data).toMatchObject({ fields: { subject: "mine" } });
});
