/**
 * NOTIFY push (RFC 5465) against real servers. Dovecot 2.3 has NOTIFY: the server scope watches
 * every mailbox over one connection (item hints from `* STATUS`, folder hints from `* LIST`).
 * Cyrus 3.6 has no NOTIFY, and a Dovecot whose NOTIFY SET is refused stands in for one that
 * answers BAD: both fall back to IDLE on the first 10 mailboxes. Connections are counted by a
 * loopback proxy in front of the server; every mutation goes through a second imapflow client.
 */
import { ImapFlow } from "imapflow";
import { lastValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listSelectable } from "../../adapters/imap/imap-hierarchy.js";
import { rawImap } from "../../adapters/imap/imap-raw.js";
import { createImapAccount, type ImapOptions } from "../../adapters/imap/index.js";
import { NotSupportedError } from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import { diffMirror, type Mirror, mirrorImporter } from "../../src/testing/index.js";
import { CYRUS_COMMANDS, type CyrusServer, startCyrus } from "../servers/cyrus.js";
import { DOVECOT_COMMANDS, type DovecotServer, startDovecot } from "../servers/dovecot.js";
import { serverAvailability } from "../servers/process.js";
import { startTcpProxy, type TcpProxy } from "../servers/tcp-proxy.js";
import {
  cyrusImapServer,
  dovecotImapServer,
  type ImapTestServer,
  mailboxTruth,
  mutator,
  projectMessage,
  rawMessage,
} from "./harness.js";

const dovecotSkip = serverAvailability("Dovecot", DOVECOT_COMMANDS).skip;
const cyrusSkip = serverAvailability("Cyrus", CYRUS_COMMANDS).skip;
const WAIT_MS = 30_000;

const scopeView = {
  project: projectMessage,
  readOf: (o: { data: unknown }) => (o.data as { seen: boolean }).seen,
};

/** Polls `ok` until it holds; fails naming `what` after a generous deadline. */
async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A sink that remembers every notification and waits for one matching a predicate. */
function watcher() {
  const seen: Notification[] = [];
  return {
    seen,
    sink: { update: (n: Notification) => void seen.push(n) },
    async next(match: (n: Notification) => boolean, what: string): Promise<Notification> {
      await until(() => seen.some(match), `${what}; saw ${JSON.stringify(seen)}`);
      return seen.find(match) as Notification;
    },
  };
}

interface PushProxy extends TcpProxy {
  /** Resolves once the server has sent `count` IDLE continuations (`+ ...`) in all. */
  idling(count?: number): Promise<void>;
}

/** A loopback proxy that counts connections; `rewrite` edits client → server bytes. */
async function pushProxy(target: number, rewrite?: [string, string]): Promise<PushProxy> {
  let continuations = 0;
  const tcp = await startTcpProxy(target, () => {
    // Only the "+" that answers an IDLE counts (AUTHENTICATE gets one too).
    let idleSent = false;
    return {
      up(b) {
        const text = b.toString("latin1");
        if (/ IDLE\r\n$/.test(text)) idleSent = true;
        return rewrite ? Buffer.from(text.replace(rewrite[0], rewrite[1]), "latin1") : b;
      },
      down(b) {
        if (idleSent && /(^|\r\n)\+ /.test(b.toString("latin1"))) {
          idleSent = false;
          continuations++;
        }
        return b;
      },
    };
  });
  return Object.assign(tcp, {
    idling: (count = 1) => until(() => continuations >= count, `${count} IDLE continuations`),
  });
}

/** Creates mailboxes M00..M11 with one message each; returns the adapter's mailbox order. */
async function twelveMailboxes(client: ImapFlow): Promise<string[]> {
  for (let i = 0; i < 12; i++) {
    const path = `M${String(i).padStart(2, "0")}`;
    await client.mailboxCreate(path);
    await client.append(path, rawMessage(`seed-${path}`));
  }
  const paths = await listSelectable(client);
  expect(paths.length).toBeGreaterThan(10);
  return paths;
}

async function uidValidityOf(client: ImapFlow, path: string): Promise<string> {
  const status = await client.status(path, { uidValidity: true });
  if (!status) throw new Error(`STATUS ${path} failed`);
  return String(status.uidValidity);
}

describe("imap raw wrapper", () => {
  const unconnected = () =>
    new ImapFlow({ host: "127.0.0.1", port: 1, auth: { user: "x", pass: "y" }, logger: false });

  it("finds the imapflow internals it relies on in the pinned imapflow", async () => {
    const raw = await rawImap(unconnected());
    expect(typeof raw.command).toBe("function");
  });

  it("throws NotSupportedError when an imapflow internal is missing", async () => {
    await expect(rawImap({} as ImapFlow)).rejects.toBeInstanceOf(NotSupportedError);
    for (const member of ["exec", "untaggedHandlers", "sectionHandlers"]) {
      const client = unconnected();
      (client as unknown as Record<string, unknown>)[member] = undefined;
      await expect(rawImap(client)).rejects.toThrow(/imapflow .*internals/);
    }
  });
});

describe.skipIf(dovecotSkip)("NOTIFY push on Dovecot", () => {
  let dovecot: DovecotServer;
  let server: ImapTestServer;
  let n = 0;
  beforeAll(async () => {
    dovecot = await startDovecot();
    server = dovecotImapServer(dovecot);
  });
  afterAll(() => dovecot?.stop());

  async function fresh(): Promise<{ user: string; client: ImapFlow; options: ImapOptions }> {
    const user = `notify${++n}`;
    const client = await mutator(server, user);
    const options = { host: "127.0.0.1", port: dovecot.port, user, password: dovecot.password };
    return { user, client, options };
  }

  it("Dovecot advertises NOTIFY", async () => {
    const { client } = await fresh();
    expect(client.capabilities.has("NOTIFY")).toBe(true);
    await client.logout();
  });

  it("an append beyond the first 10 mailboxes reaches the server sink over one connection, and its sync imports it", async () => {
    const { client, options } = await fresh();
    const paths = await twelveMailboxes(client);
    const target = paths[11] as string;
    expect(paths.slice(0, 10)).not.toContain(target);
    const syncer = createImapAccount(options);
    const mirror: Mirror = new Map();
    let state = await syncer.server().sync(mirrorImporter(mirror, scopeView));

    const proxy = await pushProxy(dovecot.port);
    const pusher = createImapAccount({ ...options, port: proxy.port, backoffMs: 20 });
    const w = watcher();
    const sub = pusher.server().subscribe(w.sink);
    await proxy.idling();
    await client.append(target, rawMessage("pushed"));
    const v = await uidValidityOf(client, target);
    const created = await w.next((x) => x.object.parentKey === target, `a hint on ${target}`);
    expect(created).toMatchObject({
      objectType: "item",
      eventType: "created",
      scope: "server",
      object: { sourcekey: `${target}/${v}:*`, type: "item", parentKey: target },
    });

    // The hint triggers a sync, which imports the message.
    state = await syncer.server().sync(mirrorImporter(mirror, scopeView), state);
    const truth = new Map();
    for (const path of paths) await mailboxTruth(client, path, truth, true);
    expect(diffMirror(mirror, truth)).toBeUndefined();
    const subjects = [...mirror.values()].map((e) => (e.data as { subject?: string }).subject);
    expect(subjects).toContain("pushed");

    // Flag changes and expunges in a mailbox that is not selected; then INBOX (the selected one).
    const lock = await client.getMailboxLock(target);
    try {
      await client.messageFlagsAdd("1", ["\\Flagged"]);
      await w.next(
        (x) => x.object.parentKey === target && x.eventType === "updated",
        "a flag hint",
      );
      await client.messageDelete("1");
      await w.next((x) => x.object.parentKey === target && x.eventType === "deleted", "an expunge");
    } finally {
      lock.release();
    }
    await client.append("INBOX", rawMessage("to-inbox"));
    const inboxV = await uidValidityOf(client, "INBOX");
    await w.next(
      (x) =>
        x.eventType === "created" &&
        x.object.sourcekey === `INBOX/${inboxV}:*` &&
        x.scope === "server",
      "an INBOX hint",
    );
    expect(w.seen.every((x) => x.objectType === "item")).toBe(true);
    expect(proxy.accepted).toBe(1);
    sub.unsubscribe();
    await pusher.close();
    await syncer.close();
    await proxy.close();
    await client.logout();
  });

  it("mailboxes created, renamed and deleted by a second connection become folder hints", async () => {
    const { client, options } = await fresh();
    const proxy = await pushProxy(dovecot.port);
    const account = createImapAccount({ ...options, port: proxy.port, backoffMs: 20 });
    const all = watcher();
    const tree = watcher();
    const subs = [account.server().subscribe(all.sink)];
    await proxy.idling(1);
    subs.push(account.hierarchy().subscribe(tree.sink));
    await proxy.idling(2);
    const delimiter = (await client.list()).find((e) => e.path === "INBOX")?.delimiter ?? "/";
    const kid = `Parent${delimiter}kid`;
    const watched = [
      [all, "server"],
      [tree, "hierarchy"],
    ] as const;
    // Dovecot reports mailbox-name events ~0.5-1.5 s late and merges quick sequences (a rename
    // right after a create may then be lost), so each step waits for its hints first.
    const folders = (eventType: string, key: string) =>
      Promise.all(
        watched.map(([w, scope]) =>
          w.next(
            (x) =>
              x.objectType === "folder" && x.eventType === eventType && x.object.sourcekey === key,
            `${scope}: folder ${eventType} ${key}`,
          ),
        ),
      );
    await client.mailboxCreate("Fresh");
    const made = await folders("created", "Fresh");
    for (const [i, hint] of made.entries()) {
      expect(hint).toMatchObject({
        scope: watched[i]?.[1],
        object: { type: "folder", data: { path: "Fresh", name: "Fresh", selectable: true } },
      });
    }
    await client.mailboxCreate(kid);
    for (const hint of await folders("created", kid)) {
      expect(hint.object).toMatchObject({ parentKey: "Parent", data: { name: "kid", delimiter } });
    }
    await client.mailboxRename("Fresh", "Renamed");
    await folders("deleted", "Fresh");
    await folders("created", "Renamed");
    await client.mailboxDelete("Renamed");
    await folders("deleted", "Renamed");
    expect(tree.seen.every((x) => x.objectType === "folder" && x.scope === "hierarchy")).toBe(true);
    expect(proxy.accepted).toBe(2);
    for (const s of subs) s.unsubscribe();
    await account.close();
    await proxy.close();
    await client.logout();
  });

  it("IDLE is re-issued after idleRestartMs and NOTIFY keeps delivering on the same connection", async () => {
    const { client, options } = await fresh();
    await client.mailboxCreate("A");
    const proxy = await pushProxy(dovecot.port);
    const account = createImapAccount({ ...options, port: proxy.port, idleRestartMs: 100 });
    const w = watcher();
    const sub = account.server().subscribe(w.sink);
    await proxy.idling(4); // the first IDLE and three re-issues
    await client.append("A", rawMessage("after-restarts"));
    await w.next((x) => x.eventType === "created" && x.object.parentKey === "A", "a hint on A");
    expect(proxy.accepted).toBe(1);
    sub.unsubscribe();
    await account.close();
    await proxy.close();
    await client.logout();
  });

  it("after a dropped connection, the new session reports what changed while it was down", async () => {
    const { client, options } = await fresh();
    await client.mailboxCreate("A");
    const proxy = await pushProxy(dovecot.port);
    const account = createImapAccount({ ...options, port: proxy.port, backoffMs: 20 });
    const w = watcher();
    const sub = account.server().subscribe(w.sink);
    await proxy.idling();
    proxy.refuse = true;
    proxy.cutAll();
    // Nothing listens now: only the reconnect's NOTIFY SET STATUS can show these.
    await client.append("INBOX", rawMessage("while-down"));
    await client.mailboxCreate("B");
    await client.mailboxDelete("A");
    await client.mailboxCreate("A");
    proxy.refuse = false;
    const v = await uidValidityOf(client, "A");
    const inboxV = await uidValidityOf(client, "INBOX");
    await w.next(
      (x) => x.eventType === "created" && x.object.sourcekey === `INBOX/${inboxV}:*`,
      "a message appended to INBOX while down",
    );
    await w.next(
      (x) => x.objectType === "folder" && x.eventType === "created" && x.object.sourcekey === "B",
      "folder B created while down",
    );
    // A was recreated: a new UIDVALIDITY, so every UID in it is new.
    await w.next(
      (x) => x.eventType === "created" && x.object.sourcekey === `A/${v}:*`,
      "A recreated while down",
    );
    expect(proxy.accepted).toBeGreaterThanOrEqual(2);
    sub.unsubscribe();
    await account.close();
    await proxy.close();
    await client.logout();
  });

  it("falls back to IDLE on the first 10 mailboxes when NOTIFY SET is refused", async () => {
    const { client, options } = await fresh();
    const paths = await twelveMailboxes(client);
    // An unknown NOTIFY subcommand: Dovecot answers BAD, as a server refusing the filter would.
    const proxy = await pushProxy(dovecot.port, ["NOTIFY SET", "NOTIFY XSET"]);
    const account = createImapAccount({ ...options, port: proxy.port, backoffMs: 20 });
    const w = watcher();
    const sub = account.server().subscribe(w.sink);
    await proxy.idling(10);
    const first = paths[0] as string;
    await client.append(first, rawMessage("fallback"));
    const hint = await w.next((x) => x.object.parentKey === first, `a hint on ${first}`);
    expect(hint).toMatchObject({ objectType: "item", eventType: "created", scope: "server" });
    // The NOTIFY attempt, the account's own connection (it LISTs the mailboxes), then one IDLE
    // connection per mailbox.
    expect(proxy.accepted).toBe(12);
    sub.unsubscribe();
    await account.close();
    await proxy.close();
    await client.logout();
  });
});

describe.skipIf(cyrusSkip)("NOTIFY fallback on Cyrus (no NOTIFY)", () => {
  let cyrus: CyrusServer;
  let server: ImapTestServer;
  beforeAll(async () => {
    cyrus = await startCyrus();
    server = cyrusImapServer(cyrus);
  });
  afterAll(() => cyrus?.stop());

  it("server push IDLEs on the first 10 mailboxes; hierarchy push completes", async () => {
    const user = "fallback";
    cyrus.addUser(user);
    const client = await mutator(server, user);
    expect(client.capabilities.has("NOTIFY")).toBe(false);
    const paths = await twelveMailboxes(client);
    const options = { host: "127.0.0.1", user, password: cyrus.password, backoffMs: 20 };
    const proxy = await pushProxy(cyrus.imapPort);
    const account = createImapAccount({ ...options, port: proxy.port });
    const w = watcher();
    const sub = account.server().subscribe(w.sink);
    // Cyrus compresses (COMPRESS=DEFLATE), so the proxy can't see IDLE start: wait for every
    // connection, then append until the hint arrives (the first append may race its IDLE).
    await until(() => proxy.accepted >= 12, "12 connections");
    const last = paths[9] as string;
    const onLast = (x: Notification) => x.object.parentKey === last;
    for (let i = 0; !w.seen.some(onLast); i++) {
      if (i === 60) throw new Error(`no hint on ${last}; saw ${JSON.stringify(w.seen)}`);
      await client.append(last, rawMessage(`fallback${i}`));
      await new Promise((r) => setTimeout(r, 500));
    }
    const hint = await w.next(onLast, `a hint on ${last}`);
    expect(hint).toMatchObject({ objectType: "item", eventType: "created", scope: "server" });
    // The capability check, the account's own connection (LIST), one IDLE connection per mailbox.
    expect(proxy.accepted).toBe(12);
    await expect(
      lastValueFrom(account.hierarchy().notifications().pipe(toArray())),
    ).resolves.toEqual([]);
    sub.unsubscribe();
    await account.close();
    await proxy.close();
    await client.logout();
  });
});
