/**
 * The mass-change guard: a pull round or a push that would delete more than half of a
 * collection (and more than 20 objects) pauses with `MassChangeError`; nothing is deleted and
 * the state / outbox does not move past the deletes until the app confirms.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { MassChangeError } from "../../src/core/errors.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { push } from "../../src/two-way/push.js";

const SOURCE = "memory:alice";

async function setup(n = 40) {
  const server = createMemoryServer();
  const store = server.createStore("alice");
  const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
  const keys = Array.from({ length: n }, (_, i) => inbox.createItem({ s: `m${i}` }));
  const target = memoryWriteTarget(server, inbox.sourcekey);
  const mirror = createSqliteMirror(new Database(":memory:"), {
    source: SOURCE,
    keyFor: target.keyFor,
  });
  const states = createMemoryStateStore();
  // Batches of 7: a round's deletes arrive over several batches.
  const pull = (confirmMassChange?: boolean) =>
    runSync(store.items, {
      ...mirror.callbacks,
      store: states,
      key: SOURCE,
      batchSize: 7,
      confirmMassChange,
    });
  const pushAll = (confirmMassChange?: boolean) =>
    push(target, mirror.outbox, { pair: SOURCE, ...mirror.pushCallbacks, confirmMassChange });
  await pull();
  expect(mirror.count()).toBe(n);
  return { server, store, inbox, keys, target, mirror, states, pull, pushAll };
}

async function rejection(p: Promise<unknown>): Promise<MassChangeError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MassChangeError);
  return error as MassChangeError;
}

describe("mass-change guard, pull", () => {
  it("a round deleting 30 of 40 pauses: nothing deleted, state not saved past the deletes; confirmed, it applies", async () => {
    const { server, keys, mirror, states, pull } = await setup();
    const before = await states.get(SOURCE);
    // Deletes spread over the round, with updates between them.
    for (const [i, k] of keys.entries()) {
      if (i % 4 === 3) server.updateItem(k, { s: "edited" });
      else if (i < 40) server.deleteItem(k);
    }
    const error = await rejection(pull());
    expect(error).toMatchObject({
      code: "ERR_MASS_CHANGE",
      pair: SOURCE,
      direction: "pull",
      deletes: 30,
      size: 40,
      threshold: { share: 0.5, min: 20 },
    });
    expect(error.message).toContain("would delete 30 of 40");
    expect(mirror.count()).toBe(40);
    expect(await states.get(SOURCE)).toBe(before);
    // Still paused on the next pull without a confirmation.
    await rejection(pull());
    expect(mirror.count()).toBe(40);
    const done = await pull(true);
    expect(done.deleted).toBe(30);
    expect(mirror.count()).toBe(10);
    expect(
      mirror.rows().every((r) => (r.data as { fields: { s: string } }).fields.s === "edited"),
    ).toBe(true);
    expect(await states.get(SOURCE)).not.toBe(before);
    // The state now covers the deletes: the next pull has nothing to pause on.
    expect((await pull()).deleted).toBe(0);
  });

  it("below the threshold nothing pauses: 20 of 40 (not more than 20), 21 of 50 (not more than half)", async () => {
    const a = await setup(40);
    for (const k of a.keys.slice(0, 20)) a.server.deleteItem(k);
    expect((await a.pull()).deleted).toBe(20);
    expect(a.mirror.count()).toBe(20);
    const b = await setup(50);
    for (const k of b.keys.slice(0, 21)) b.server.deleteItem(k);
    expect((await b.pull()).deleted).toBe(21);
    expect(b.mirror.count()).toBe(29);
  });

  it("a forced full sync (expired state) that would sweep most rows pauses with the copy intact", async () => {
    const { server, keys, mirror, pull } = await setup();
    for (const k of keys.slice(0, 35)) server.deleteItem(k);
    server.compact(); // every state expires: the next pull resets and syncs in full
    const error = await rejection(pull());
    expect(error).toMatchObject({ direction: "pull", deletes: 35, size: 40 });
    expect(mirror.count()).toBe(40);
    await rejection(pull());
    const done = await pull(true);
    expect(done.fullSync).toBe(true);
    expect(mirror.count()).toBe(5);
  });

  it("a full sync from nothing over a full copy (the state was lost) is guarded the same way", async () => {
    const { server, keys, mirror, states, pull } = await setup();
    for (const k of keys.slice(0, 25)) server.deleteItem(k);
    await states.delete(SOURCE);
    await rejection(pull());
    expect(mirror.count()).toBe(40);
    await pull(true);
    expect(mirror.count()).toBe(15);
  });

  it("massChange: false turns the guard off", async () => {
    const { server, keys, mirror, store, states } = await setup();
    for (const k of keys) server.deleteItem(k);
    await runSync(store.items, {
      ...mirror.callbacks,
      store: states,
      key: SOURCE,
      massChange: false,
    });
    expect(mirror.count()).toBe(0);
  });
});

describe("mass-change guard, push", () => {
  it("a push deleting 30 of 40 pauses before any write; the outbox keeps every entry; confirmed, it pushes", async () => {
    const { server, mirror, pushAll } = await setup();
    const rows = mirror.rows();
    mirror.edits.update(rows[39]?.id as string, { fields: { s: "mine" }, read: false });
    for (const r of rows.slice(0, 30)) mirror.edits.remove(r.id);
    const error = await rejection(pushAll());
    expect(error).toMatchObject({ direction: "push", pair: SOURCE, deletes: 30, size: 40 });
    expect(server.allItems()).toHaveLength(40);
    expect(server.allItems().some((i) => i.fields.s === "mine")).toBe(false);
    expect(await mirror.outbox.pending(SOURCE)).toHaveLength(31);
    expect(await mirror.outbox.lastPushed(SOURCE)).toBe(0);
    await rejection(pushAll());
    const done = await pushAll(true);
    expect(done).toMatchObject({ status: "done", pushed: 31 });
    expect(server.allItems()).toHaveLength(10);
    expect(await mirror.outbox.pending(SOURCE)).toHaveLength(0);
  });

  it("below the threshold a push of deletes goes through; local creates do not count as server objects", async () => {
    const { server, mirror, pushAll, inbox } = await setup();
    const rows = mirror.rows();
    for (let i = 0; i < 30; i++) {
      mirror.edits.create({ data: { fields: { s: `new${i}` } }, parentKey: inbox.sourcekey });
    }
    for (const r of rows.slice(0, 20)) mirror.edits.remove(r.id);
    expect((await pushAll()).pushed).toBe(50);
    expect(server.allItems()).toHaveLength(50);
    // 21 of the 50 now on the server: not more than half.
    for (const r of mirror.rows().slice(0, 21)) mirror.edits.remove(r.id);
    expect((await pushAll()).pushed).toBe(21);
    // 26 of 29 with 30 pending local creates: the creates are not on the server yet.
    for (let i = 0; i < 30; i++) {
      mirror.edits.create({ data: { fields: { s: `more${i}` } }, parentKey: inbox.sourcekey });
    }
    const stale = mirror.rows().filter((r) => !r.sourcekey.startsWith("local:") || r.changeKey);
    for (const r of stale.slice(0, 26)) mirror.edits.remove(r.id);
    await rejection(pushAll());
  });
});
