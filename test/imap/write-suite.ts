/**
 * The IMAP write target against a real server: each operation, its condition, and a create
 * replayed after a crash. Every remote change goes through a second imapflow client.
 */
import { expect, it } from "vitest";
import {
  createImapAccount,
  type ImapAccount,
  type ImapMessage,
} from "../../adapters/imap/index.js";
import {
  ConflictError,
  NotFoundError,
  NotSupportedError,
  PushBlockedError,
} from "../../src/core/errors.js";
import type { Importer, SyncObject } from "../../src/core/types.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { twoWayImporter } from "../../src/two-way/importer.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";
import type { OutboxEntry, WriteTarget } from "../../src/two-way/types.js";
import { type ImapTestServer, mutator, rawMessage } from "./harness.js";

let users = 0;
const ctx = { signal: new AbortController().signal };

/** A fresh user with mailboxes A and B, the adapter's account and a second client. */
export async function writeFixture(server: ImapTestServer, prefix: string) {
  const user = `${prefix}${process.pid}x${++users}`;
  server.addUser(user);
  const other = await mutator(server, user);
  await other.mailboxCreate("A");
  await other.mailboxCreate("B");
  const account = createImapAccount({
    host: "127.0.0.1",
    port: server.port,
    user,
    password: server.password,
    fetch: "source",
    commandTimeoutMs: 20_000,
  });
  return {
    user,
    other,
    account,
    async close() {
      await account.close();
      await other.logout().catch(() => undefined);
    },
  };
}

/** Appends a message to `box` with the second client; resolves with its UID. */
async function appendOther(fx: { other: ImapFlowLike }, box: string, subject: string) {
  const res = await fx.other.append(box, rawMessage(subject));
  if (!res || res.uid === undefined) throw new Error("no APPENDUID");
  return res.uid;
}

type ImapFlowLike = Awaited<ReturnType<typeof mutator>>;

const entry = <K extends OutboxEntry["kind"]>(
  e: Omit<Extract<OutboxEntry, { kind: K }>, "seq" | "at">,
): Extract<OutboxEntry, { kind: K }> =>
  ({ seq: 1, at: 0, ...e }) as Extract<OutboxEntry, { kind: K }>;

/** Runs `fn` with `box` freshly selected on the second client. */
export async function inBox<R>(other: ImapFlowLike, box: string, fn: () => Promise<R>): Promise<R> {
  const lock = await other.getMailboxLock(box);
  try {
    await other.mailboxOpen(box);
    return await fn();
  } finally {
    lock.release();
  }
}

/** Messages of `box` carrying `messageId`, per the second client. */
function countId(other: ImapFlowLike, box: string, messageId: string): Promise<number> {
  return inBox(other, box, async () => {
    const found = await other.search({ header: { "message-id": messageId } }, { uid: true });
    return (found || []).length;
  });
}

/** Adds `flag` to message `uid` of `box` with the second client. */
export function flagOther(other: ImapFlowLike, box: string, uid: number | string, flag: string) {
  return inBox(other, box, () => other.messageFlagsAdd(String(uid), [flag], { uid: true }));
}

export function writeSuite(getServer: () => ImapTestServer): void {
  it("read and flags: UNCHANGEDSINCE; MODIFIED is a ConflictError; vanished is NotFoundError", async () => {
    const fx = await writeFixture(getServer(), "wr");
    try {
      const target = fx.account.writeTarget("A");
      const uid = await appendOther(fx, "A", "flags");
      const [key] = [...(await keysOf(fx.account, "A"))];
      expect(key).toMatch(new RegExp(`^\\d+:${uid}$`));
      const before = (await target.fetch(key as string, ctx)) as SyncObject<ImapMessage>;
      expect(before.data.seen).toBe(false);
      const read = await target.read?.(
        entry<"read">({
          kind: "read",
          localId: "m",
          sourcekey: before.sourcekey,
          changeKey: before.changeKey,
          isRead: true,
        }),
        ctx,
      );
      expect((read?.object?.data as ImapMessage | undefined)?.seen).toBe(true);
      expect(BigInt(read?.changeKey as string)).toBeGreaterThan(BigInt(before.changeKey as string));
      // Another client changes the message: a write based on the older version is refused.
      await flagOther(fx.other, "A", uid, "\\Flagged");
      const stale = entry<"update">({
        kind: "update",
        localId: "m",
        sourcekey: before.sourcekey,
        changeKey: read?.changeKey,
        data: { ...before.data, flags: ["$Work"], seen: true },
      });
      await expect(target.update(stale, ctx)).rejects.toBeInstanceOf(ConflictError);
      const now = (await target.fetch(before.sourcekey, ctx)) as SyncObject<ImapMessage>;
      expect(now.data.flags).toEqual(["\\Flagged"]);
      expect(target.applied(stale, now)).toBe(false);
      const fresh = { ...stale, changeKey: now.changeKey };
      const updated = await target.update(fresh, ctx);
      expect((updated.object?.data as ImapMessage | undefined)?.flags).toEqual(["$Work"]);
      expect(target.applied(fresh, updated.object as SyncObject)).toBe(true);
      // A message's content can't change: the update is refused for good, not as a conflict.
      const content = {
        ...fresh,
        changeKey: updated.changeKey,
        data: { ...(fresh.data as object), source: "eA==" },
      };
      await expect(target.update(content, ctx)).rejects.toBeInstanceOf(NotSupportedError);
      await inBox(fx.other, "A", () => fx.other.messageDelete(String(uid), { uid: true }));
      await expect(
        target.read?.(
          entry<"read">({ kind: "read", localId: "m", sourcekey: before.sourcekey, isRead: false }),
          ctx,
        ),
      ).rejects.toBeInstanceOf(NotFoundError);
      expect(await target.fetch(before.sourcekey, ctx)).toBeUndefined();
    } finally {
      await fx.close();
    }
  });

  it("create: APPEND with the client-chosen Message-ID; a replay finds it (no second message)", async () => {
    const fx = await writeFixture(getServer(), "wc");
    try {
      const target = fx.account.writeTarget("A");
      const sourcekey = target.keyFor("local-1");
      expect(sourcekey).toBe(target.keyFor("local-1"));
      expect(sourcekey).not.toBe(target.keyFor("local-2"));
      const source = Buffer.from(rawMessage("created")).toString("base64");
      const create = entry<"create">({
        kind: "create",
        localId: "local-1",
        sourcekey,
        parentKey: "A",
        data: { source, flags: ["$Work"], seen: true },
      });
      const made = await target.create(create, ctx);
      expect(made.sourcekey).toMatch(/^\d+:\d+$/);
      const obj = made.object as SyncObject<ImapMessage>;
      expect(obj.data).toMatchObject({ flags: ["$Work"], seen: true });
      expect(obj.data.envelope?.messageId).toBe(sourcekey);
      // The same create again (a crash between the APPEND and the outbox's commit): it finds
      // its own message instead of appending a second one.
      const again = await target.create(create, ctx);
      expect(again.sourcekey).toBe(made.sourcekey);
      const found = await target.fetch(sourcekey, ctx);
      expect(found?.sourcekey).toBe(made.sourcekey);
      expect(target.applied(create, found as SyncObject)).toBe(true);
      expect(await countId(fx.other, "A", sourcekey)).toBe(1);

      // Through the pusher: the write lands, the process "crashes" before the commit, the
      // next push meets its own message and completes without a second APPEND.
      const outbox = createOutbox(createMemoryStateStore());
      const pair = "imap:crash";
      const key2 = target.keyFor("local-2");
      await outbox.record(pair, { ...create, localId: "local-2", sourcekey: key2 });
      const crashing: WriteTarget = {
        ...target,
        create: async (e, c) => {
          await target.create(e, c);
          throw new Error("crash after APPEND");
        },
      };
      await expect(push(crashing, outbox, { pair, retry: false })).rejects.toBeInstanceOf(
        PushBlockedError,
      );
      const pushed: string[] = [];
      const r = await push(target, outbox, {
        pair,
        retry: false,
        onPushed: (_e, res) => void pushed.push(res?.sourcekey as string),
      });
      expect(r).toMatchObject({ status: "done", pushed: 1 });
      expect(pushed[0]).toMatch(/^\d+:\d+$/);
      expect(await countId(fx.other, "A", key2)).toBe(1);
      expect(await outbox.conflicts(pair, { all: true })).toEqual([]);
    } finally {
      await fx.close();
    }
  });

  it("delete: conditional \\Deleted then UID EXPUNGE of that message only", async () => {
    const fx = await writeFixture(getServer(), "wd");
    try {
      const target = fx.account.writeTarget("A");
      const uid = await appendOther(fx, "A", "doomed");
      const keep = await appendOther(fx, "A", "kept");
      // A \Deleted message of someone else's must survive our expunge.
      await flagOther(fx.other, "A", keep, "\\Deleted");
      const key = [...(await keysOf(fx.account, "A"))].find((k) => k.endsWith(`:${uid}`)) as string;
      const base = (await target.fetch(key, ctx))?.changeKey;
      await flagOther(fx.other, "A", uid, "\\Flagged");
      const del = entry<"delete">({
        kind: "delete",
        localId: "d",
        sourcekey: key,
        changeKey: base,
      });
      await expect(target.delete(del, ctx)).rejects.toBeInstanceOf(ConflictError);
      expect(await target.fetch(key, ctx)).toBeDefined();
      const now = (await target.fetch(key, ctx))?.changeKey;
      await target.delete({ ...del, changeKey: now }, ctx);
      expect(await target.fetch(key, ctx)).toBeUndefined();
      await expect(target.delete({ ...del, changeKey: now }, ctx)).rejects.toBeInstanceOf(
        NotFoundError,
      );
      expect([...(await keysOf(fx.account, "A"))].some((k) => k.endsWith(`:${keep}`))).toBe(true);
    } finally {
      await fx.close();
    }
  });

  it("move: UID MOVE with COPYUID's key, refused when the message changed", async () => {
    const fx = await writeFixture(getServer(), "wm");
    try {
      const target = fx.account.writeTarget("A", { qualified: true });
      const uid = await appendOther(fx, "A", "mover");
      const key = [...(await keysOf(fx.account, "A", true))][0] as string;
      expect(key).toMatch(new RegExp(`^A/\\d+:${uid}$`));
      const base = (await target.fetch(key, ctx))?.changeKey;
      await flagOther(fx.other, "A", uid, "\\Flagged");
      const move = entry<"move">({
        kind: "move",
        localId: "m",
        sourcekey: key,
        changeKey: base,
        parentKey: "B",
      });
      await expect(target.move?.(move, ctx)).rejects.toBeInstanceOf(ConflictError);
      const now = (await target.fetch(key, ctx))?.changeKey;
      const moved = await target.move?.({ ...move, changeKey: now }, ctx);
      expect(moved?.sourcekey).toMatch(/^B\/\d+:\d+$/);
      expect(moved?.object?.parentKey).toBe("B");
      expect([...(await keysOf(fx.account, "B", true))]).toEqual([moved?.sourcekey]);
      expect(await target.fetch(key, ctx)).toBeUndefined();
      // The moved message stays writable through the same target (keys name their mailbox).
      const read = await target.read?.(
        entry<"read">({
          kind: "read",
          localId: "m",
          sourcekey: moved?.sourcekey as string,
          changeKey: moved?.changeKey,
          isRead: true,
        }),
        ctx,
      );
      expect((read?.object?.data as ImapMessage | undefined)?.seen).toBe(true);
    } finally {
      await fx.close();
    }
  });

  it("echo: the pull does not deliver the version our own writes produced", async () => {
    const fx = await writeFixture(getServer(), "we");
    try {
      const target = fx.account.writeTarget("A");
      await appendOther(fx, "A", "echo");
      const outbox = createOutbox(createMemoryStateStore());
      const pair = "imap:echo";
      const seen: string[] = [];
      const rows = new Map<string, SyncObject<ImapMessage>>();
      const inner: Importer = {
        update: (o) => {
          seen.push(`update ${o.sourcekey} ${o.changeKey}`);
          rows.set(o.sourcekey, o as SyncObject<ImapMessage>);
        },
        delete: (o) => void seen.push(`delete ${o.sourcekey}`),
        read: (o) => void seen.push(`read ${o.sourcekey}`),
      };
      const folder = fx.account.folder("A");
      let state = await folder.sync(twoWayImporter(inner, outbox, pair));
      const [row] = [...rows.values()];
      await outbox.record(pair, {
        kind: "read",
        localId: "m",
        sourcekey: row?.sourcekey as string,
        changeKey: row?.changeKey,
        isRead: true,
      });
      const key = target.keyFor("new");
      await outbox.record(pair, {
        kind: "create",
        localId: "new",
        sourcekey: key,
        data: { source: Buffer.from(rawMessage("mine")).toString("base64") },
      });
      expect(await push(target, outbox, { pair, retry: false })).toMatchObject({ pushed: 2 });
      seen.length = 0;
      state = await folder.sync(twoWayImporter(inner, outbox, pair), state);
      expect(seen).toEqual([]);
      // A later remote change of the same message is news again.
      await flagOther(fx.other, "A", "1:*", "\\Flagged");
      await folder.sync(twoWayImporter(inner, outbox, pair), state);
      expect(seen.length).toBe(2);
    } finally {
      await fx.close();
    }
  });
}

/** The keys a fresh folder (or server-scope) pull delivers for `box`. */
async function keysOf(account: ImapAccount, box: string, qualified = false): Promise<Set<string>> {
  const keys = new Set<string>();
  await account
    .folder(box)
    .sync({ update: (o) => void keys.add(qualified ? `${box}/${o.sourcekey}` : o.sourcekey) });
  return keys;
}
