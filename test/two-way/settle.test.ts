/**
 * `settlePushed` against a server that says nothing (no pull runs between the push and the
 * settle): what a server that diffs by content (Xandikos) does when an object changes back to
 * the version the pull saw last. Found by the two-way conformance kit on Xandikos.
 */
import { describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { reassign } from "../../src/two-way/log.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";
import { settlePushed } from "../../src/two-way/settle.js";
import { App } from "./app.js";

const PAIR = "memory:alice";

async function setup() {
  const server = createMemoryServer();
  const store = server.createStore("alice");
  const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
  const key = inbox.createItem({ s: "a" });
  const outbox = createOutbox(createMemoryStateStore());
  const target = memoryWriteTarget(server, inbox.sourcekey);
  const app = new App(outbox, PAIR, target);
  let state: string | undefined;
  const pull = async () => {
    state = await store.items.sync(app.importer, state);
  };
  await pull();
  const id = app.byKey(key)?.localId as string;
  const settle = () => settlePushed(target, outbox, { pair: PAIR, ...app.callbacks });
  const fields = () => app.rows.get(id)?.fields;
  return { server, outbox, target, app, pull, key, id, settle, fields };
}

describe("settlePushed", () => {
  it("replaces a version the pusher handed the copy when the server moved on unreported", async () => {
    const { server, outbox, target, app, key, settle, fields, id } = await setup();
    await app.remove(id);
    server.updateItem(key, { s: "b" });
    // Delete vs edit keeps the edit: the copy takes the server's version from the pusher.
    await push(target, outbox, { pair: PAIR, policy: "client-wins", ...app.callbacks });
    expect(fields()).toEqual({ s: "b" });
    server.updateItem(key, { s: "a" });
    expect(await settle()).toBe(1);
    expect(fields()).toEqual({ s: "a" });
    // Checked once: nothing left to check.
    expect((await outbox.read(PAIR)).echoes).toEqual([]);
    expect(await settle()).toBe(0);
  });

  it("replaces our pushed version when the server changed back unreported", async () => {
    const { server, outbox, target, app, key, id, settle, fields } = await setup();
    await app.update(id, { s: "b" });
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    expect(fields()).toEqual({ s: "b" });
    server.updateItem(key, { s: "a" });
    expect(await settle()).toBe(1);
    expect(fields()).toEqual({ s: "a" });
  });

  it("drops an object gone unreported, keeps a confirmed one, and leaves pending ones to the push", async () => {
    const { server, outbox, target, app, key, id, settle, fields } = await setup();
    await app.update(id, { s: "b" });
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    // The server still holds our version: confirmed, forgotten, the copy untouched.
    expect(await settle()).toBe(0);
    expect(fields()).toEqual({ s: "b" });
    expect((await outbox.read(PAIR)).echoes).toEqual([]);

    await app.update(id, { s: "c" });
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    await app.update(id, { s: "d" }); // pending: the push meets the server's change
    server.updateItem(key, { s: "theirs" });
    expect(await settle()).toBe(0);
    expect(fields()).toEqual({ s: "d" });

    await outbox.update(PAIR, (d) => void (d.entries = []));
    server.deleteItem(key);
    expect(await settle()).toBe(1);
    expect(app.rows.has(id)).toBe(false);
  });

  it("a pull that reports the object first leaves nothing to check", async () => {
    const { server, outbox, target, app, key, id, pull, fields } = await setup();
    await app.update(id, { s: "b" });
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    await pull(); // reports our version: the echo is consumed
    server.updateItem(key, { s: "c" });
    let fetched = 0;
    const counting = {
      ...target,
      fetch: (...a: Parameters<typeof target.fetch>) => {
        fetched++;
        return target.fetch(...a);
      },
    };
    expect(await settlePushed(counting, outbox, { pair: PAIR, ...app.callbacks })).toBe(0);
    expect(fetched).toBe(0);
    expect(fields()).toEqual({ s: "b" });
    await pull();
    expect(fields()).toEqual({ s: "c" });
  });

  it("still checks echoes of older documents, which name their row only as `created`", async () => {
    const { server, outbox, app, key, id, settle } = await setup();
    await outbox.update(PAIR, (d) => {
      d.echoes = [{ sourcekey: key, changeKey: "old", created: id }];
    });
    server.deleteItem(key);
    expect(await settle()).toBe(1);
    expect(app.rows.has(id)).toBe(false);
  });

  it("follows a merged row: the echo moves with the row's pending entries (reassign)", async () => {
    const { outbox } = await setup();
    await outbox.update(PAIR, (d) => {
      d.echoes = [
        { sourcekey: "k1", changeKey: "1", localId: "dup" },
        // An echo from an older document names its row as `created`.
        { sourcekey: "k2", changeKey: "2", created: "dup" },
        { sourcekey: "k3", changeKey: "3", localId: "other" },
      ];
      reassign(d, "dup", "keep");
    });
    expect((await outbox.read(PAIR)).echoes).toEqual([
      { sourcekey: "k1", changeKey: "1", localId: "keep" },
      { sourcekey: "k2", changeKey: "2", localId: "keep" },
      { sourcekey: "k3", changeKey: "3", localId: "other" },
    ]);
  });
});
