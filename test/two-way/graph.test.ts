/**
 * Two-way sync with Microsoft Graph, against the emulator (test/graph): event creates deduped by
 * `transactionId`, contact creates found again by their client-key extended property, `If-Match`
 * → 412 `ErrorIrresolvableConflict` → `ConflictError`, 404 → `NotFoundError`, message flags,
 * moves and deletes, and the writes showing up in delta.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CLIENT_KEY_PROPERTY } from "../../adapters/graph/index.js";
import { ConflictError, NotFoundError } from "../../src/core/errors.js";
import type { OutboxEntry } from "../../src/two-way/types.js";
import { GraphEmulator } from "../graph/emulator.js";
import { account, recorder } from "../graph/helpers.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => {
  await emulator?.close();
});
beforeEach(() => emulator.reset());

const ctx = { signal: new AbortController().signal };
const at = { seq: 1, at: 0 };
const time = (day: number) => ({
  dateTime: new Date(emulator.model.day0 + day * 86_400_000).toISOString().replace("Z", ""),
  timeZone: "UTC",
});
type Kind<K extends OutboxEntry["kind"]> = Extract<OutboxEntry, { kind: K }>;

describe("Graph events", () => {
  it("create with a transactionId, replay → the same event; If-Match → 412 → ConflictError; delete; 404", async () => {
    const graph = account(emulator);
    const target = graph.calendarWriteTarget("primary");
    const key = target.keyFor("row-1");
    const create: Kind<"create"> = {
      ...at,
      kind: "create",
      localId: "row-1",
      sourcekey: key,
      data: { subject: "a", start: time(1), end: time(1 + 1 / 24) },
    };
    const made = await target.create(create, ctx);
    // A create replayed after a crash: Graph hands back the first one's event.
    const again = await target.create(create, ctx);
    expect(again.sourcekey).toBe(made.sourcekey);
    expect(emulator.model.events.live()).toHaveLength(1);
    expect(emulator.model.events.live()[0]?.transactionId).toBe(key);
    const remote = await target.fetch(made.sourcekey, ctx);
    expect(remote && target.applied(create, remote)).toBe(true);
    // Found by its client key too (the extended property).
    expect((await target.fetch(key, ctx))?.sourcekey).toBe(made.sourcekey);
    emulator.model.updateEvent(made.sourcekey, { subject: "theirs" });
    const update: Kind<"update"> = {
      ...at,
      kind: "update",
      localId: "row-1",
      sourcekey: made.sourcekey,
      changeKey: made.changeKey,
      data: { ...(remote?.data as object), subject: "b" },
    };
    await expect(target.update(update, ctx)).rejects.toBeInstanceOf(ConflictError);
    const now = await target.fetch(made.sourcekey, ctx);
    const ok = await target.update({ ...update, changeKey: now?.changeKey }, ctx);
    expect(ok.object?.data).toMatchObject({ subject: "b" });
    expect(ok.changeKey).not.toBe(now?.changeKey);
    const del: Kind<"delete"> = {
      ...at,
      kind: "delete",
      localId: "row-1",
      sourcekey: made.sourcekey,
    };
    await expect(target.delete({ ...del, changeKey: now?.changeKey }, ctx)).rejects.toBeInstanceOf(
      ConflictError,
    );
    await target.delete({ ...del, changeKey: ok.changeKey }, ctx);
    expect(await target.fetch(made.sourcekey, ctx)).toBeUndefined();
    await expect(target.delete(del, ctx)).rejects.toBeInstanceOf(NotFoundError);
    await graph.close();
  });

  it("writes show up in the calendar's delta with their new etag", async () => {
    const graph = account(emulator);
    const target = graph.calendarWriteTarget("primary");
    const events = recorder();
    const state = await graph.calendar("primary").sync(events.importer);
    const made = await target.create(
      {
        ...at,
        kind: "create",
        localId: "x",
        sourcekey: target.keyFor("x"),
        data: { subject: "new", start: time(2), end: time(2 + 1 / 24) },
      },
      ctx,
    );
    await graph.calendar("primary").sync(events.importer, state);
    expect(events.items.get(made.sourcekey)).toMatchObject({ changeKey: made.changeKey });
    await graph.close();
  });
});

describe("Graph contacts", () => {
  it("a replayed create finds the first by its client key; If-Match → 412; 404", async () => {
    const graph = account(emulator);
    const target = graph.contactsWriteTarget();
    const key = target.keyFor("c-1");
    const create: Kind<"create"> = {
      ...at,
      kind: "create",
      localId: "c-1",
      sourcekey: key,
      data: { displayName: "Ann", jobTitle: "pilot" },
    };
    const made = await target.create(create, ctx);
    const again = await target.create(create, ctx);
    expect(again.sourcekey).toBe(made.sourcekey);
    expect(emulator.model.contacts.live()).toHaveLength(1);
    expect(emulator.model.contacts.live()[0]?.extended).toEqual({ [CLIENT_KEY_PROPERTY]: key });
    expect((await target.fetch(key, ctx))?.sourcekey).toBe(made.sourcekey);
    const remote = await target.fetch(made.sourcekey, ctx);
    expect(remote?.parentKey).toBe("default");
    expect(remote && target.applied(create, remote)).toBe(true);
    emulator.model.updateContact(made.sourcekey, { displayName: "Anne" });
    const update: Kind<"update"> = {
      ...at,
      kind: "update",
      localId: "c-1",
      sourcekey: made.sourcekey,
      changeKey: made.changeKey,
      data: { ...(remote?.data as object), displayName: "Annie" },
    };
    await expect(target.update(update, ctx)).rejects.toBeInstanceOf(ConflictError);
    const now = await target.fetch(made.sourcekey, ctx);
    const ok = await target.update({ ...update, changeKey: now?.changeKey }, ctx);
    expect(ok.object?.data).toMatchObject({ displayName: "Annie", jobTitle: "pilot" });
    await target.delete(
      { ...at, kind: "delete", localId: "c-1", sourcekey: made.sourcekey, changeKey: ok.changeKey },
      ctx,
    );
    await expect(target.update({ ...update, changeKey: ok.changeKey }, ctx)).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await graph.close();
  });
});

describe("Graph messages", () => {
  it("flags (conditional), read and move (unconditional), delete; 429 retried by the client", async () => {
    const id = emulator.model.receive("inbox", "hello");
    const graph = account(emulator);
    const target = graph.mailWriteTarget();
    const remote = await target.fetch(id, ctx);
    expect(remote?.parentKey).toBe("inbox");
    const flag: Kind<"update"> = {
      ...at,
      kind: "update",
      localId: "m",
      sourcekey: id,
      changeKey: remote?.changeKey,
      data: { ...(remote?.data as object), flag: { flagStatus: "flagged" } },
    };
    emulator.inject({
      path: /messages/,
      method: "PATCH",
      status: 429,
      headers: { "retry-after": "0" },
    });
    const flagged = await target.update(flag, ctx);
    expect(emulator.model.messages.get(id)?.flagged).toBe(true);
    // A stale flag write is a conflict; a read flag is not guarded.
    await expect(target.update(flag, ctx)).rejects.toBeInstanceOf(ConflictError);
    const read = await target.read?.(
      {
        ...at,
        kind: "read",
        localId: "m",
        sourcekey: id,
        changeKey: remote?.changeKey,
        isRead: true,
      },
      ctx,
    );
    expect(read?.changeKey).not.toBe(flagged.changeKey);
    expect(emulator.model.messages.get(id)?.isRead).toBe(true);
    const move: Kind<"move"> = {
      ...at,
      kind: "move",
      localId: "m",
      sourcekey: id,
      parentKey: "archive",
    };
    const moved = await target.move?.(move, ctx);
    // ImmutableId: the id survives the move.
    expect(moved).toMatchObject({ sourcekey: id, object: { parentKey: "archive" } });
    const now = await target.fetch(id, ctx);
    expect(now && target.applied(move, now)).toBe(true);
    await expect(
      target.delete(
        { ...at, kind: "delete", localId: "m", sourcekey: id, changeKey: flagged.changeKey },
        ctx,
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    await target.delete(
      { ...at, kind: "delete", localId: "m", sourcekey: id, changeKey: moved?.changeKey },
      ctx,
    );
    expect(emulator.model.messages.get(id)).toBeUndefined();
    await expect(target.move?.(move, ctx)).rejects.toBeInstanceOf(NotFoundError);
    await graph.close();
  });

  it("the emulator answers a stale If-Match with Graph's 412 error body", async () => {
    const id = emulator.model.receive("inbox", "hello");
    const res = await fetch(`${emulator.baseUrl}me/messages/${id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json", "if-match": 'W/"stale"' },
      body: JSON.stringify({ isRead: true }),
    });
    expect(res.status).toBe(412);
    expect(await res.json()).toMatchObject({ error: { code: "ErrorIrresolvableConflict" } });
    expect(emulator.model.messages.get(id)?.isRead).toBe(false);
  });
});
