import { describe, expect, it, vi } from "vitest";
import { createMemoryServer, type MemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import {
  ArgumentError,
  NotFoundError,
  PushBlockedError,
  TransientError,
} from "../../src/core/errors.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";
import type { Conflict, WriteTarget } from "../../src/two-way/types.js";
import { App } from "./app.js";

const PAIR = "memory:alice";
const fast = { retries: 3, minDelayMs: 0, maxDelayMs: 0 };

async function setup() {
  const server = createMemoryServer();
  const store = server.createStore("alice");
  const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
  const other = store.createFolder({ name: "Other", kind: "mail" });
  const outbox = createOutbox(createMemoryStateStore());
  const target = memoryWriteTarget(server, inbox.sourcekey);
  const app = new App(outbox, PAIR, target);
  let state: string | undefined;
  const pull = async () => {
    state = await store.items.sync(app.importer, state);
  };
  return { server, store, inbox, other, outbox, target, app, pull };
}

function serverSnapshot(server: MemoryServer) {
  const out: Record<string, { parentKey?: string; fields: unknown; read: boolean }> = {};
  for (const i of server.allItems().sort((a, b) => (a.sourcekey < b.sourcekey ? -1 : 1))) {
    out[i.sourcekey] = { parentKey: i.parentKey, fields: i.fields, read: i.read };
  }
  return out;
}

/** A target whose calls are logged and can be made to fail. */
function spy(target: WriteTarget, fail?: (kind: string, n: number) => unknown) {
  const calls: string[] = [];
  let n = 0;
  const wrap =
    <A extends unknown[], R>(kind: string, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const e = a[0] as { sourcekey: string };
      calls.push(`${kind} ${e.sourcekey}`);
      const error = fail?.(kind, ++n);
      if (error) throw error;
      return fn(...a);
    };
  const t: WriteTarget = {
    ...target,
    create: wrap("create", target.create),
    update: wrap("update", target.update),
    delete: wrap("delete", target.delete),
    read: wrap("read", (target.read as NonNullable<WriteTarget["read"]>).bind(target)),
    move: wrap("move", (target.move as NonNullable<WriteTarget["move"]>).bind(target)),
  };
  return { target: t, calls };
}

describe("outbox coalescing", () => {
  it("folds updates of one object into one entry keeping the first base, and never touches the head", async () => {
    const outbox = createOutbox(createMemoryStateStore());
    const rec = (localId: string, data: unknown, changeKey = "1") =>
      outbox.record(PAIR, { kind: "update", localId, sourcekey: `k${localId}`, changeKey, data });
    await rec("a", { v: 1 }); // head
    await rec("a", { v: 2 }, "1");
    await rec("b", { v: 1 });
    await rec("a", { v: 3 }, "9");
    const pending = await outbox.pending(PAIR);
    expect(pending.map((e) => [e.localId, (e as { data: unknown }).data])).toEqual([
      ["a", { v: 1 }],
      ["a", { v: 3 }],
      ["b", { v: 1 }],
    ]);
    expect((pending[1] as { changeKey?: string }).changeKey).toBe("1");
  });

  it("drops a create deleted before it was pushed, with the updates in between", async () => {
    const outbox = createOutbox(createMemoryStateStore());
    await outbox.record(PAIR, { kind: "update", localId: "x", sourcekey: "kx", data: 1 });
    await outbox.record(PAIR, { kind: "create", localId: "n", sourcekey: "kn", data: { a: 1 } });
    await outbox.record(PAIR, { kind: "update", localId: "n", sourcekey: "kn", data: { a: 2 } });
    await outbox.record(PAIR, { kind: "read", localId: "n", sourcekey: "kn", isRead: true });
    const entries = await outbox.pending(PAIR);
    expect(entries.map((e) => e.kind)).toEqual(["update", "create", "read"]);
    expect((entries[1] as { data: unknown }).data).toEqual({ a: 2 });
    expect(await outbox.record(PAIR, { kind: "delete", localId: "n", sourcekey: "kn" })).toBe(
      undefined,
    );
    expect((await outbox.pending(PAIR)).map((e) => e.localId)).toEqual(["x"]);
  });

  it("turns updates followed by a delete into one delete on the first base", async () => {
    const outbox = createOutbox(createMemoryStateStore());
    await outbox.record(PAIR, { kind: "update", localId: "h", sourcekey: "kh", data: 0 });
    await outbox.record(PAIR, {
      kind: "update",
      localId: "a",
      sourcekey: "ka",
      changeKey: "3",
      data: 1,
    });
    await outbox.record(PAIR, {
      kind: "read",
      localId: "a",
      sourcekey: "ka",
      changeKey: "3",
      isRead: true,
    });
    await outbox.record(PAIR, { kind: "delete", localId: "a", sourcekey: "ka", changeKey: "7" });
    const entries = await outbox.pending(PAIR);
    expect(entries.map((e) => [e.kind, e.localId, "changeKey" in e ? e.changeKey : null])).toEqual([
      ["update", "h", null],
      ["delete", "a", "3"],
    ]);
  });

  it("rejects malformed changes with an ArgumentError naming the field", async () => {
    const outbox = createOutbox(createMemoryStateStore());
    await expect(
      outbox.record(PAIR, { kind: "update", localId: "", sourcekey: "k", data: 1 }),
    ).rejects.toThrow(/localId/);
    await expect(
      outbox.record(PAIR, { kind: "read", localId: "a", sourcekey: "k" } as never),
    ).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe("push to the memory server", () => {
  it("writes local edits in outbox order and writes the results back", async () => {
    const { server, inbox, other, outbox, target, app, pull } = await setup();
    const existing = inbox.createItem({ s: "old" });
    await pull();
    const a = await app.create(inbox.sourcekey, { s: "a" });
    const b = await app.create(inbox.sourcekey, { s: "b" });
    const old = app.byKey(existing)?.localId as string;
    await app.update(old, { s: "new" });
    await app.markRead(old, true);
    await app.move(a, other.sourcekey);
    await app.remove(b); // cancels b's create
    const s = spy(target);
    const result = await push(s.target, outbox, { pair: PAIR, ...app.callbacks });
    expect(result).toMatchObject({ status: "done", pushed: 4 });
    expect(s.calls).toEqual([
      `create local:${a}`,
      `update ${existing}`,
      `read ${existing}`,
      `move local:${a}`,
    ]);
    expect(await outbox.lastPushed(PAIR)).toBe(5);
    expect(app.rows.get(old)?.changeKey).toBe(server.item(existing).changeKey);
    await pull();
    expect(app.snapshot()).toEqual(serverSnapshot(server));
  });

  it("does not deliver its own pushes back to the importer (echo suppression)", async () => {
    const { server, inbox, store, outbox, target, app } = await setup();
    let state = await store.items.sync(app.importer);
    const id = await app.create(inbox.sourcekey, { s: "mine" });
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    await app.update(id, { s: "mine 2" });
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    const seen = vi.fn();
    const { twoWayImporter } = await import("../../src/two-way/importer.js");
    state = await store.items.sync(twoWayImporter({ update: seen }, outbox, PAIR), state);
    expect(seen).not.toHaveBeenCalled();
    // A remote edit of the same object still arrives.
    server.updateItem(app.rows.get(id)?.sourcekey as string, { s: "theirs" });
    await store.items.sync(twoWayImporter({ update: seen }, outbox, PAIR), state);
    expect(seen).toHaveBeenCalledTimes(1);
  });

  it("retries transient failures and honours the retry policy", async () => {
    const { inbox, outbox, target, app } = await setup();
    await app.create(inbox.sourcekey, { s: "a" });
    const s = spy(target, (_k, n) =>
      n <= 2 ? new TransientError("503", { status: 503 }) : undefined,
    );
    const result = await push(s.target, outbox, { pair: PAIR, retry: fast, ...app.callbacks });
    expect(result.pushed).toBe(1);
    expect(s.calls).toHaveLength(3);
  });

  it("blocks behind a failing entry with PushBlockedError and resumes there", async () => {
    const { server, inbox, outbox, target, app } = await setup();
    await app.create(inbox.sourcekey, { s: "a" });
    await app.create(inbox.sourcekey, { s: "b" });
    await app.create(inbox.sourcekey, { s: "c" });
    let broken = true;
    const s = spy(target, (kind, n) =>
      broken && n === 2 ? new Error(`${kind} refused`) : undefined,
    );
    const error = await push(s.target, outbox, { pair: PAIR, retry: fast, ...app.callbacks }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PushBlockedError);
    expect(error).toMatchObject({ code: "ERR_PUSH_BLOCKED", seq: 2, localId: "l2" });
    expect(server.allItems().map((i) => i.fields.s)).toEqual(["a"]);
    expect((await outbox.pending(PAIR)).map((e) => e.localId)).toEqual(["l2", "l3"]);
    broken = false;
    await push(s.target, outbox, { pair: PAIR, ...app.callbacks });
    expect(server.allItems().map((i) => i.fields.s)).toEqual(["a", "b", "c"]);
  });

  it("a crash after the server's write and before the outbox commit neither duplicates nor conflicts", async () => {
    const { server, inbox, outbox, target, app, pull } = await setup();
    await pull();
    const id = await app.create(inbox.sourcekey, { s: "a" });
    const crashAfterWrite = (t: WriteTarget): WriteTarget => ({
      ...t,
      create: async (e, ctx) => {
        await t.create(e, ctx);
        throw new Error("crash");
      },
      update: async (e, ctx) => {
        await t.update(e, ctx);
        throw new Error("crash");
      },
    });
    await expect(push(crashAfterWrite(target), outbox, { pair: PAIR })).rejects.toThrow(
      PushBlockedError,
    );
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    expect(server.allItems()).toHaveLength(1);
    await app.update(id, { s: "b" });
    await expect(push(crashAfterWrite(target), outbox, { pair: PAIR })).rejects.toThrow("crash");
    // The onPushed write-back crashing is the same window.
    await expect(
      push(target, outbox, {
        pair: PAIR,
        onPushed: () => {
          throw new Error("crash in write-back");
        },
      }),
    ).rejects.toThrow("crash in write-back");
    const result = await push(target, outbox, { pair: PAIR, ...app.callbacks });
    expect(result).toMatchObject({ status: "done", pushed: 1, resolved: [] });
    expect(await outbox.conflicts(PAIR, { all: true })).toEqual([]);
    await pull();
    expect(app.snapshot()).toEqual(serverSnapshot(server));
  });

  it("an abort leaves the entry at the head", async () => {
    const { inbox, outbox, target, app } = await setup();
    await app.create(inbox.sourcekey, { s: "a" });
    const controller = new AbortController();
    const s = spy(target, () => {
      controller.abort(new Error("stop"));
      return new TransientError("reset");
    });
    await expect(
      push(s.target, outbox, { pair: PAIR, signal: controller.signal, retry: fast }),
    ).rejects.toThrow("stop");
    expect(await outbox.pending(PAIR)).toHaveLength(1);
  });
});

describe("conflicts", () => {
  async function conflicted() {
    const env = await setup();
    const key = env.inbox.createItem({ s: "base" });
    await env.pull();
    const id = env.app.byKey(key)?.localId as string;
    env.server.updateItem(key, { s: "theirs" });
    await env.app.update(id, { s: "mine" });
    return { ...env, key, id };
  }

  it('"ask" pauses the pair, keeps both versions, and resumes after resolve("local")', async () => {
    const { server, outbox, target, app, key, id, pull } = await conflicted();
    await app.update(id, { s: "mine" }); // behind the head: a second entry
    const other = await app.create(app.rows.get(id)?.parentKey as string, { s: "behind" });
    const events: Conflict[] = [];
    outbox.conflictEvents().subscribe((c) => events.push(c));
    const result = await push(target, outbox, { pair: PAIR, ...app.callbacks });
    expect(result.status).toBe("paused");
    expect(result.conflict).toMatchObject({ kind: "edit", base: "3", status: "open" });
    expect(result.conflict?.remote?.data).toMatchObject({ fields: { s: "theirs" } });
    expect(server.item(key).fields).toEqual({ s: "theirs" });
    expect(server.allItems()).toHaveLength(1); // the entry behind waits
    // Pulling meanwhile does not overwrite the pending local edit.
    await pull();
    expect(app.rows.get(id)?.fields).toEqual({ s: "mine" });
    // Still paused until resolved.
    expect((await push(target, outbox, { pair: PAIR })).status).toBe("paused");
    const [open] = await outbox.conflicts(PAIR);
    await outbox.resolve((open as Conflict).id, "local");
    const after = await push(target, outbox, { pair: PAIR, ...app.callbacks });
    expect(after).toMatchObject({ status: "done", pushed: 3 });
    expect(server.item(key).fields).toEqual({ s: "mine" });
    expect(app.rows.get(other)).toBeDefined();
    expect(events.map((c) => c.status)).toEqual(["open", "resolved"]);
    await pull();
    expect(app.snapshot()).toEqual(serverSnapshot(server));
  });

  it('resolve("remote") drops the local edit with a record and the copy takes the server\'s', async () => {
    const { server, outbox, target, app, key, id, pull } = await conflicted();
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    const [open] = await outbox.conflicts(PAIR);
    await outbox.resolve((open as Conflict).id, "remote");
    await push(target, outbox, { pair: PAIR, ...app.callbacks });
    expect(app.rows.get(id)?.fields).toEqual({ s: "theirs" });
    const [record] = await outbox.conflicts(PAIR, { all: true });
    expect(record).toMatchObject({ status: "resolved", resolvedBy: "app", applied: true });
    expect(record?.dropped?.map((e) => e.kind)).toEqual(["update"]);
    await pull();
    expect(app.snapshot()).toEqual(serverSnapshot(server));
    expect(server.item(key).fields).toEqual({ s: "theirs" });
  });

  it("policies: server-wins, client-wins and a merge function", async () => {
    for (const [policy, expected] of [
      ["server-wins", { s: "theirs" }],
      ["client-wins", { s: "mine" }],
      [() => ({ merged: { fields: { s: "mine+theirs" } } }), { s: "mine+theirs" }],
    ] as const) {
      const { server, outbox, target, app, key, pull } = await conflicted();
      const result = await push(target, outbox, { pair: PAIR, policy, ...app.callbacks });
      expect(result.status).toBe("done");
      expect(result.resolved).toHaveLength(1);
      expect(server.item(key).fields).toEqual(expected);
      await pull();
      expect(app.snapshot()).toEqual(serverSnapshot(server));
    }
  });

  it("delete vs modify keeps the edit by default, both ways (vdirsyncer #128)", async () => {
    // The app deletes, the server edits: the edit stays and comes back to the app.
    {
      const { server, outbox, target, app, key, id, pull } = await conflicted();
      await outbox.update(PAIR, (d) => void (d.entries = [])); // forget the update
      app.rows.get(id);
      await app.remove(id);
      const result = await push(target, outbox, {
        pair: PAIR,
        policy: "client-wins",
        ...app.callbacks,
      });
      expect(result.resolved[0]).toMatchObject({ kind: "local-delete", resolution: "remote" });
      expect(server.item(key).fields).toEqual({ s: "theirs" });
      await pull();
      expect(app.snapshot()).toEqual(serverSnapshot(server));
    }
    // The app edits, the server deletes: the edit is re-created under a new key.
    {
      const { server, outbox, target, app, key, id, pull } = await conflicted();
      server.deleteItem(key);
      const result = await push(target, outbox, {
        pair: PAIR,
        policy: "server-wins",
        ...app.callbacks,
      });
      expect(result.resolved[0]).toMatchObject({ kind: "remote-delete", resolution: "local" });
      expect(server.allItems().map((i) => i.fields)).toEqual([{ s: "mine" }]);
      expect(app.rows.get(id)?.sourcekey).not.toBe(key);
      await pull();
      expect(app.snapshot()).toEqual(serverSnapshot(server));
    }
  });

  it("deleteConflicts: policy hands delete conflicts to the policy", async () => {
    const { server, outbox, target, app, key, id } = await conflicted();
    await outbox.update(PAIR, (d) => void (d.entries = []));
    await app.remove(id);
    const result = await push(target, outbox, {
      pair: PAIR,
      deleteConflicts: "policy",
      policy: "client-wins",
      ...app.callbacks,
    });
    expect(result.resolved[0]).toMatchObject({ kind: "local-delete", resolution: "local" });
    expect(() => server.item(key)).toThrow(NotFoundError);
  });

  it("newest-wins compares the entry's time with the server's; unknown or equal times ask", async () => {
    for (const [remoteAt, expected] of [
      [0, "local"],
      [Number.MAX_SAFE_INTEGER, "remote"],
      [undefined, "ask"],
    ] as const) {
      const { outbox, target, app } = await conflicted();
      const timed = { ...target, modifiedAt: () => remoteAt };
      const result = await push(timed, outbox, {
        pair: PAIR,
        policy: "newest-wins",
        ...app.callbacks,
      });
      if (expected === "ask") expect(result.status).toBe("paused");
      else expect(result.resolved[0]?.resolution).toBe(expected);
    }
  });

  it("maxEntries stops with status limit and the rest stays queued", async () => {
    const { inbox, outbox, target, app } = await setup();
    for (const s of ["a", "b", "c"]) await app.create(inbox.sourcekey, { s });
    expect(await push(target, outbox, { pair: PAIR, maxEntries: 2 })).toMatchObject({
      status: "limit",
      pushed: 2,
    });
    expect(await outbox.pending(PAIR)).toHaveLength(1);
  });

  it("a paused pair does not stop other pairs", async () => {
    const { server, inbox, outbox, target, app } = await conflicted();
    expect((await push(target, outbox, { pair: PAIR })).status).toBe("paused");
    const other = new App(outbox, "memory:alice/other", target);
    await other.create(inbox.sourcekey, { s: "elsewhere" });
    expect(await push(target, outbox, { pair: "memory:alice/other" })).toMatchObject({
      status: "done",
      pushed: 1,
    });
    expect(server.allItems()).toHaveLength(2);
    void app;
  });
});
