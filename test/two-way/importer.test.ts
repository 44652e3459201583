import { describe, expect, it } from "vitest";
import { applyChange } from "../../src/core/engine.js";
import type { DeletedObject, Importer, SyncObject } from "../../src/core/types.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { twoWayImporter } from "../../src/two-way/importer.js";
import { complete, record } from "../../src/two-way/log.js";
import { createOutbox } from "../../src/two-way/outbox.js";

const PAIR = "test:moves";
/** The version our move wrote: message m1, now in archive. */
const ours: SyncObject = {
  sourcekey: "m1",
  type: "item",
  parentKey: "archive",
  changeKey: "ck2",
  data: { isRead: true },
};

/** An outbox holding the echo of our move of m1, and an importer without `moved` that logs. */
async function setup() {
  const outbox = createOutbox(createMemoryStateStore());
  await outbox.update(PAIR, (doc) => {
    const move = { kind: "move", localId: "l1", sourcekey: "m1", parentKey: "archive" } as const;
    const entry = record(doc, { ...move, changeKey: "ck1" }, 0);
    complete(doc, entry?.seq as number, { sourcekey: "m1", changeKey: "ck2", object: ours });
  });
  const calls: string[] = [];
  const inner: Importer = {
    update: (obj: SyncObject, flags) => {
      calls.push(`update ${obj.sourcekey} ${obj.parentKey} ${obj.changeKey} ${flags.created}`);
    },
    delete: (obj: DeletedObject) => {
      calls.push(`delete ${obj.sourcekey} ${obj.parentKey}`);
    },
  };
  const importer = twoWayImporter(inner, outbox, PAIR);
  // As the engine delivers a move.
  const move = (object: SyncObject, fromParentKey: string) =>
    applyChange(importer, { kind: "move", object, fromParentKey });
  return { outbox, calls, move };
}

describe("twoWayImporter: moves for an importer without `moved`", () => {
  it("suppresses our own move as a whole (the delete half no longer eats the echo)", async () => {
    const { outbox, calls, move } = await setup();
    await move(ours, "inbox");
    expect(calls).toEqual([]);
    // The echo is consumed: the same version seen again (from the other folder) is delivered.
    expect(await outbox.isEcho(PAIR, ours)).toBe(false);
  });

  it("delivers a remote move as a delete and a created update, in that order", async () => {
    const { calls, move } = await setup();
    const theirs = { ...ours, parentKey: "inbox", changeKey: "ck3" };
    await move(theirs, "archive");
    expect(calls).toEqual(["delete m1 archive", "update m1 inbox ck3 true"]);
  });

  it("leaves an object with pending local changes alone", async () => {
    const { outbox, calls, move } = await setup();
    await outbox.record(PAIR, { kind: "read", localId: "l1", sourcekey: "m1", isRead: false });
    await move({ ...ours, changeKey: "ck3" }, "inbox");
    expect(calls).toEqual([]);
  });
});

describe("an echo found by fetch (a replayed write)", () => {
  const found = async (byChangeKey: boolean) => {
    const outbox = createOutbox(createMemoryStateStore());
    await outbox.update(PAIR, (doc) => {
      const update = { kind: "update", localId: "l1", sourcekey: "m1", data: {} } as const;
      const entry = record(doc, { ...update, changeKey: "ck1" }, 0);
      const result = { sourcekey: "m1", changeKey: "ck2", object: ours };
      complete(doc, entry?.seq as number, result, { byChangeKey });
    });
    return outbox;
  };

  it("is matched by its contents: a remote move or flag that kept the changeKey is news", async () => {
    const outbox = await found(false);
    expect(await outbox.isEcho(PAIR, ours)).toBe(true);
    expect(await outbox.isEcho(PAIR, { ...ours, parentKey: "inbox" })).toBe(false);
    expect(await outbox.isEcho(PAIR, { ...ours, data: { isRead: false } })).toBe(false);
  });

  it("by changeKey alone where the changeKey covers everything (a GET may serialise it apart)", async () => {
    const outbox = await found(true);
    expect(await outbox.isEcho(PAIR, { ...ours, data: { isRead: true, extra: 1 } })).toBe(true);
  });
});
