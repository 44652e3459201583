/**
 * Conformance harnesses for the IMAP adapter against a real server. Each history gets a fresh
 * user; every mutation goes through a second imapflow client, never through the adapter.
 */
import fc from "fast-check";
import { ImapFlow } from "imapflow";
import type { ImapFolder } from "../../adapters/imap/imap-hierarchy.js";
import type { ImapMessage } from "../../adapters/imap/imap-messages.js";
import {
  createImapAccount,
  type ImapAccount,
  type ImapSyncMode,
} from "../../adapters/imap/index.js";
import { decodeState, encodeState } from "../../src/core/state.js";
import type { SyncObject } from "../../src/core/types.js";
import type {
  ConformanceBackend,
  ConformanceHarness,
  ConformanceScope,
  MirrorEntry,
} from "../../src/testing/harness.js";
import type { CyrusServer } from "../servers/cyrus.js";
import type { DovecotServer } from "../servers/dovecot.js";
import { startTcpProxy } from "../servers/tcp-proxy.js";

export interface ImapTestServer {
  name: string;
  port: number;
  password: string;
  addUser(user: string): void;
}

/** A running Dovecot as an IMAP test server (any user name logs in with the shared password). */
export function dovecotImapServer(dovecot: DovecotServer): ImapTestServer {
  return {
    name: "dovecot",
    port: dovecot.port,
    password: dovecot.password,
    addUser: dovecot.addUser,
  };
}

/** A running Cyrus as an IMAP test server. */
export function cyrusImapServer(cyrus: CyrusServer): ImapTestServer {
  return { name: "cyrus", port: cyrus.imapPort, password: cyrus.password, addUser: cyrus.addUser };
}

export type ImapOp =
  | { t: "append"; box: number; seen: boolean; flagged: boolean }
  | { t: "flag"; box: number; msg: number; flag: "\\Seen" | "\\Flagged" | "$Work"; on: boolean }
  | { t: "expunge"; box: number; msg: number }
  | { t: "move"; box: number; msg: number; to: number }
  | { t: "create"; box: number }
  | { t: "delete"; box: number }
  | { t: "rename"; box: number; to: number }
  | { t: "recreate"; box: number };

let users = 0;
let messages = 0;

/** Logs in a plain imapflow client (the "second connection" of the tests). */
export async function mutator(server: ImapTestServer, user: string): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: "127.0.0.1",
    port: server.port,
    secure: false,
    auth: { user, pass: server.password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

export function rawMessage(subject: string): string {
  const id = `<${subject}.${process.pid}.${++messages}@deltasync.test>`;
  return [
    `Message-ID: ${id}`,
    `Date: ${new Date().toUTCString()}`,
    "From: Test <test@deltasync.test>",
    "To: Alice <alice@deltasync.test>",
    `Subject: ${subject}`,
    "",
    `body of ${subject}`,
    "",
  ].join("\r\n");
}

export const projectMessage = (obj: SyncObject) => {
  const m = obj.data as ImapMessage;
  return { subject: m.envelope?.subject, messageId: m.envelope?.messageId, flags: m.flags };
};
const readOf = (obj: SyncObject) => (obj.data as ImapMessage).seen;

/** What a mailbox really holds, read with `client` (keyed like the adapter: uidvalidity:uid). */
export async function mailboxTruth(
  client: ImapFlow,
  path: string,
  into = new Map<string, MirrorEntry>(),
  qualified = false,
): Promise<Map<string, MirrorEntry>> {
  const lock = await client.getMailboxLock(path);
  try {
    const box = await client.mailboxOpen(path);
    if (box.exists === 0) return into;
    for await (const msg of client.fetch("1:*", { uid: true, flags: true, envelope: true })) {
      const flags = [...(msg.flags ?? [])].filter((f) => f !== "\\Seen" && f !== "\\Recent");
      const key = `${box.uidValidity}:${msg.uid}`;
      into.set(qualified ? `${path}/${key}` : key, {
        type: "item",
        parentKey: path,
        data: {
          subject: msg.envelope?.subject,
          messageId: msg.envelope?.messageId,
          flags: flags.sort(),
        },
        read: msg.flags?.has("\\Seen") ?? false,
      });
    }
    return into;
  } finally {
    lock.release();
  }
}

/**
 * True for a SELECT refused because the mailbox does not exist. Dovecot keeps listing a mailbox
 * deleted while it had children (e.g. B renamed to C with its child B.x, then C deleted: the
 * delete op only removes the children it knows by name), without \Noselect; it holds nothing.
 */
function noSuchMailbox(error: unknown): boolean {
  const e = error as {
    responseStatus?: string;
    serverResponseCode?: string;
    responseText?: string;
  };
  return (
    e?.responseStatus === "NO" &&
    (e.serverResponseCode === "NONEXISTENT" ||
      /mailbox (doesn't|does not) exist/i.test(e.responseText ?? ""))
  );
}

async function selectable(client: ImapFlow): Promise<string[]> {
  const list = await client.list({ listOnly: true });
  return list
    .filter((e) => ![...e.flags].some((f) => /\\(noselect|nonexistent)/i.test(f)))
    .map((e) => e.path);
}

const mutation: fc.Arbitrary<ImapOp> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant("append" as const),
      box: fc.nat(3),
      seen: fc.boolean(),
      flagged: fc.boolean(),
    }),
    weight: 4,
  },
  {
    // A few messages per mailbox, toggled on and off: values revert to earlier ones.
    arbitrary: fc.record({
      t: fc.constant("flag" as const),
      box: fc.nat(3),
      msg: fc.nat(4),
      flag: fc.constantFrom("\\Seen" as const, "\\Flagged" as const, "$Work" as const),
      on: fc.boolean(),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ t: fc.constant("expunge" as const), box: fc.nat(3), msg: fc.nat(20) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      t: fc.constant("move" as const),
      box: fc.nat(3),
      msg: fc.nat(20),
      to: fc.nat(3),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ t: fc.constant("create" as const), box: fc.nat(3) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("delete" as const), box: fc.nat(3) }), weight: 1 },
  {
    arbitrary: fc.record({ t: fc.constant("rename" as const), box: fc.nat(3), to: fc.nat(3) }),
    weight: 1,
  },
  { arbitrary: fc.record({ t: fc.constant("recreate" as const), box: fc.nat(3) }), weight: 1 },
);

const folderOps = new Set(["append", "flag", "expunge", "move"]);

export interface HarnessOptions {
  /**
   * `folder`: one mailbox scope, with expiry by recreating the mailbox (UIDVALIDITY change).
   * `server`: the server-wide composite and the hierarchy, with mailbox create/rename/delete.
   */
  kind: "folder" | "server";
  mode?: ImapSyncMode;
  chunkSize?: number;
}

export function imapHarness(
  server: ImapTestServer,
  options: HarnessOptions,
): ConformanceHarness<ImapOp> {
  const folderOnly = options.kind === "folder";
  return {
    name: `${server.name} imap ${options.kind}${options.mode ? ` (${options.mode})` : ""}`,
    mutation: folderOnly
      ? mutation.filter((op) => folderOps.has(op.t)).map((op) => clampBoxes(op, 2))
      : mutation,
    async setup(): Promise<ConformanceBackend<ImapOp>> {
      const user = `u${process.pid}x${++users}`;
      server.addUser(user);
      const client = await mutator(server, user);
      // The adapter connects through a proxy, so a fault can cut its connections.
      let cutNext = false;
      const proxy = await startTcpProxy(server.port, () => ({
        up(b) {
          if (!cutNext) return b;
          cutNext = false;
          setImmediate(() => proxy.cutAll());
          return undefined;
        },
      }));
      const delimiter =
        (await client.list({ listOnly: true })).find((e) => e.path === "INBOX")?.delimiter ?? "/";
      // Box 0 ("A") always exists and is never renamed or deleted; box 3 is a child of box 1.
      const names = ["A", "B", "C", `B${delimiter}x`];
      await client.mailboxCreate("A");
      await client.mailboxCreate("B");
      // A few messages up front, so flag / expunge / move ops have something to act on.
      for (const [i, box] of ["A", "A", "A", "B", "B"].entries()) {
        await client.append(box, rawMessage(`seed${i}`), i % 2 ? ["\\Seen"] : []);
      }
      const accounts: ImapAccount[] = [];
      const open = (as = user, port = proxy.port): ImapAccount => {
        const account = createImapAccount({
          host: "127.0.0.1",
          port,
          user: as,
          password: server.password,
          chunkSize: options.chunkSize ?? 3,
          backoffMs: 20,
          ...(options.mode ? { mode: options.mode } : {}),
        });
        accounts.push(account);
        return account;
      };
      const account = open();
      /** A complete state of a scope of the same name made for another user: a StateError. */
      const foreign = async (scope: (a: ImapAccount) => { sync(i: object): Promise<string> }) => {
        const other = `${user}o`;
        server.addUser(other);
        const c = await mutator(server, other);
        await c.mailboxCreate("A").catch(() => undefined);
        await c.logout();
        return scope(open(other, server.port)).sync({});
      };
      const scopes: ConformanceScope[] = folderOnly
        ? [
            {
              name: "folder A",
              syncable: account.folder("A"),
              reopen: () => open().folder("A"),
              truth: () => mailboxTruth(client, "A"),
              project: projectMessage,
              readOf,
              foreignState: () => foreign((a) => a.folder("A")),
              // HIGHESTMODSEQ / UIDNEXT ahead of the server's: a server restored from a backup.
              async aheadState() {
                const env = decodeState(await open().folder("A").sync({}), "imap", "folder:A");
                const c = env.cursor as { m?: string; n: number };
                return encodeState({
                  ...env,
                  cursor: {
                    ...c,
                    ...(c.m ? { m: String(BigInt(c.m) + 1000n) } : {}),
                    n: c.n + 1000,
                  },
                });
              },
            },
          ]
        : [
            {
              name: "server",
              syncable: account.server(),
              reopen: () => open().server(),
              foreignState: () => foreign((a) => a.server()),
              truth: async () => {
                const all = new Map<string, MirrorEntry>();
                for (const path of await selectable(client)) {
                  // Listed but gone (see noSuchMailbox): no messages, as the adapter reports.
                  await mailboxTruth(client, path, all, true).catch((error: unknown) => {
                    if (!noSuchMailbox(error)) throw error;
                  });
                }
                return all;
              },
              project: projectMessage,
              readOf,
            },
            {
              name: "hierarchy",
              syncable: account.hierarchy(),
              reopen: () => open().hierarchy(),
              foreignState: () => foreign((a) => a.hierarchy()),
              truth: async () => {
                const all = new Map<string, MirrorEntry>();
                for (const e of await client.list({ listOnly: true })) {
                  all.set(e.path, {
                    type: "folder",
                    ...(e.parentPath ? { parentKey: e.parentPath } : {}),
                    data: { path: e.path },
                  });
                }
                return all;
              },
              project: (obj) => ({ path: (obj.data as ImapFolder).path }),
            },
          ];
      const exists = async (path: string) =>
        (await client.list({ listOnly: true })).some((e) => e.path === path);
      return {
        scopes,
        // A server refusing an op (NO, e.g. Cyrus on a name it still holds) makes it a no-op.
        apply: (op) =>
          applyOp(client, names, op, exists).catch((error: { responseStatus?: string }) => {
            if (error?.responseStatus !== "NO") throw error;
          }),
        ...(folderOnly ? { expireStates: () => recreate(client, "A") } : {}),
        // `invalid`: A gets a new UIDVALIDITY (the folder scope's state is refused; the server
        // scope resyncs just A); `transient`: the adapter's next command cuts its connections.
        async injectFault(kind) {
          if (kind === "invalid") await recreate(client, "A");
          else cutNext = true;
        },
        async teardown() {
          await Promise.all(accounts.map((a) => a.close()));
          await proxy.close();
          await client.logout().catch(() => client.close());
        },
      };
    },
  };
}

function clampBoxes(op: ImapOp, n: number): ImapOp {
  const out = { ...op, box: op.box % n } as ImapOp;
  if (out.t === "move") out.to = out.to % n;
  return out;
}

async function uidValidity(client: ImapFlow, path: string): Promise<bigint | undefined> {
  const status = await client.status(path, { uidValidity: true });
  return status ? status.uidValidity : undefined;
}

/** Deletes and recreates a mailbox with the same messages: a new UIDVALIDITY. */
export async function recreate(client: ImapFlow, path: string): Promise<void> {
  const saved: { source: Buffer; flags: string[] }[] = [];
  {
    const lock = await client.getMailboxLock(path);
    try {
      const box = await client.mailboxOpen(path);
      if (box.exists > 0) {
        for await (const m of client.fetch("1:*", { source: true, flags: true })) {
          if (m.source) saved.push({ source: m.source, flags: [...(m.flags ?? [])] });
        }
      }
    } finally {
      lock.release();
    }
  }
  const before = await uidValidity(client, path);
  await client.mailboxDelete(path);
  await client.mailboxCreate(path);
  const after = await uidValidity(client, path);
  if (before === after) throw new Error(`recreating ${path} kept UIDVALIDITY ${before}`);
  for (const m of saved) {
    await client.append(
      path,
      m.source,
      m.flags.filter((f) => f !== "\\Recent"),
    );
  }
}

async function withBox<R>(
  client: ImapFlow,
  path: string,
  fn: (count: number) => Promise<R>,
): Promise<R | undefined> {
  const lock = await client.getMailboxLock(path).catch(() => undefined);
  if (!lock) return undefined;
  try {
    const box = await client.mailboxOpen(path);
    return await fn(box.exists);
  } finally {
    lock.release();
  }
}

async function applyOp(
  client: ImapFlow,
  names: string[],
  op: ImapOp,
  exists: (path: string) => Promise<boolean>,
): Promise<void> {
  const path = names[op.box] as string;
  switch (op.t) {
    case "append": {
      if (!(await exists(path))) return;
      const flags = [...(op.seen ? ["\\Seen"] : []), ...(op.flagged ? ["\\Flagged"] : [])];
      await client.append(path, rawMessage(`m${messages + 1}`), flags);
      return;
    }
    case "flag":
      if (!(await exists(path))) return;
      await withBox(client, path, async (count) => {
        if (count === 0) return;
        const seq = `${(op.msg % count) + 1}`;
        if (op.on) await client.messageFlagsAdd(seq, [op.flag]);
        else await client.messageFlagsRemove(seq, [op.flag]);
      });
      return;
    case "expunge":
      if (!(await exists(path))) return;
      await withBox(client, path, async (count) => {
        if (count > 0) await client.messageDelete(`${(op.msg % count) + 1}`);
      });
      return;
    case "move": {
      const to = names[op.to] as string;
      if (to === path || !(await exists(path)) || !(await exists(to))) return;
      await withBox(client, path, async (count) => {
        if (count > 0) await client.messageMove(`${(op.msg % count) + 1}`, to);
      });
      return;
    }
    case "create":
      if (!(await exists(path))) await client.mailboxCreate(path);
      return;
    case "delete": {
      if (op.box === 0 || !(await exists(path))) return;
      const children = names.filter((n) => n.startsWith(`${path}`) && n !== path);
      for (const child of children) if (await exists(child)) await client.mailboxDelete(child);
      await client.mailboxDelete(path);
      return;
    }
    case "rename": {
      const to = names[op.to] as string;
      if (op.box === 0 || op.to === 0 || to === path || to.startsWith(path) || path.startsWith(to))
        return;
      if (!(await exists(path)) || (await exists(to))) return;
      const parent = names.find((n) => to.startsWith(n) && n !== to);
      if (parent && !(await exists(parent))) return;
      await client.mailboxRename(path, to);
      return;
    }
    case "recreate":
      if (await exists(path)) await recreate(client, path);
      return;
  }
}
