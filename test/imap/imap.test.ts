/**
 * IMAP adapter behaviour against a real Dovecot: typed errors, a dropped connection mid-sync,
 * the daysWithin window, IDLE notifications that trigger a sync, bad states, the CLI URL.
 */
import { createServer, type Socket } from "node:net";
import type { ImapFlow } from "imapflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliSource, parseImapUrl } from "../../adapters/imap/cli.js";
import { createImapAccount, type ImapOptions } from "../../adapters/imap/index.js";
import { credentialEnv } from "../../src/cli/commands.js";
import {
  ArgumentError,
  AuthError,
  NotFoundError,
  ProtocolError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import {
  checkStateErrors,
  diffMirror,
  type Mirror,
  mirrorImporter,
} from "../../src/testing/index.js";
import { DOVECOT_COMMANDS, type DovecotServer, startDovecot } from "../servers/dovecot.js";
import { freePort, hasCommand, serverAvailability } from "../servers/process.js";
import {
  dovecotImapServer,
  type ImapTestServer,
  mailboxTruth,
  mutator,
  projectMessage,
  rawMessage,
  recreate,
} from "./harness.js";
import { startProxy } from "./proxy.js";

const { skip } = serverAvailability("Dovecot", DOVECOT_COMMANDS);

const scopeView = {
  project: projectMessage,
  readOf: (o: { data: unknown }) => (o.data as { seen: boolean }).seen,
};

describe.skipIf(skip)("imap adapter on Dovecot", () => {
  let dovecot: DovecotServer;
  let server: ImapTestServer;
  let n = 0;
  beforeAll(async () => {
    dovecot = await startDovecot();
    server = dovecotImapServer(dovecot);
  });
  afterAll(() => dovecot?.stop());

  /** A fresh user with mailbox A holding `count` messages, and a second client on it. */
  async function fresh(
    count: number,
  ): Promise<{ user: string; client: ImapFlow; options: ImapOptions }> {
    const user = `t${++n}`;
    const client = await mutator(server, user);
    await client.mailboxCreate("A");
    for (let i = 0; i < count; i++)
      await client.append("A", rawMessage(`a${i}`), i % 3 ? [] : ["\\Seen"]);
    const options = { host: "127.0.0.1", port: dovecot.port, user, password: dovecot.password };
    return { user, client, options };
  }

  it("rejects a missing mailbox with NotFoundError", async () => {
    const { client, options } = await fresh(0);
    const good = createImapAccount(options);
    await expect(good.folder("Nope").sync({})).rejects.toBeInstanceOf(NotFoundError);
    await good.close();
    await client.logout();
  });

  it("reports a server that is not there as TransientError", async () => {
    const port = await freePort();
    const account = createImapAccount({
      host: "127.0.0.1",
      port,
      user: "x",
      password: "y",
      connectAttempts: 2,
      backoffMs: 1,
    });
    await expect(account.folder("INBOX").sync({})).rejects.toBeInstanceOf(TransientError);
    await account.close();
  });

  it("rejects invalid options with ArgumentError", () => {
    expect(() => createImapAccount({ host: "", user: "x" })).toThrow(ArgumentError);
  });

  it("rejects corrupt, foreign and ill-typed states with StateError", async () => {
    const { client, options } = await fresh(2);
    const account = createImapAccount(options);
    await checkStateErrors(account.folder("A"));
    await checkStateErrors(account.server());
    await checkStateErrors(account.hierarchy());
    await account.close();
    await client.logout();
  });

  it("a dropped connection mid-sync is replaced and no change is lost", async () => {
    const { user, options } = await fresh(9);
    let { client } = await fresh(0);
    client = await mutator(server, user);
    const account = createImapAccount({ ...options, chunkSize: 2, backoffMs: 10 });
    const folder = account.folder("A");
    const mirror: Mirror = new Map();
    const inner = mirrorImporter(mirror, scopeView);
    let calls = 0;
    const importer = {
      ...inner,
      update: async (
        obj: Parameters<NonNullable<typeof inner.update>>[0],
        flags: { created: boolean },
      ) => {
        if (++calls === 3) {
          dovecot.kick(user); // the server drops every connection of the user (BYE) mid-sync
          client = await mutator(server, user);
          await client.append("A", rawMessage("during-drop"));
        }
        return inner.update?.(obj, flags);
      },
    };
    let state = await folder.sync(importer);
    state = await folder.sync(importer, state);
    expect(diffMirror(mirror, await mailboxTruth(client, "A"))).toBeUndefined();
    expect(mirror.size).toBe(10);
    await account.close();
    await client.logout();
  });

  it("a connection cut in the middle of a FETCH is retried on a new one", async () => {
    const { user, client, options } = await fresh(9);
    const proxy = await startProxy(dovecot.port);
    const account = createImapAccount({
      ...options,
      port: proxy.port,
      chunkSize: 3,
      backoffMs: 10,
    });
    const mirror: Mirror = new Map();
    proxy.cutAfter("FETCH (", 2); // the second FETCH chunk of the full sync
    await account.folder("A").sync(mirrorImporter(mirror, scopeView));
    await proxy.cut;
    expect(diffMirror(mirror, await mailboxTruth(client, "A"))).toBeUndefined();
    await account.close();
    await proxy.close();
    await client.logout();
    void user;
  });

  it("a cut with no retries left fails with TransientError and resumes from the checkpoint", async () => {
    const { client, options } = await fresh(8);
    const proxy = await startProxy(dovecot.port);
    const account = createImapAccount({
      ...options,
      port: proxy.port,
      chunkSize: 2,
      connectAttempts: 1,
    });
    const folder = account.folder("A");
    const mirror: Mirror = new Map();
    let checkpoint: string | undefined;
    proxy.cutAfter("FETCH (", 3);
    proxy.refuse = false;
    const failed = folder.sync(mirrorImporter(mirror, scopeView), undefined, {
      onCheckpoint: (s) => void (checkpoint = s),
    });
    await expect(failed).rejects.toBeInstanceOf(TransientError);
    expect(checkpoint).toBeDefined();
    // Changes while the client was away must still arrive after the resume.
    await client.mailboxOpen("A");
    await client.messageFlagsAdd("1", ["\\Flagged"]);
    await client.messageDelete("2");
    await client.append("A", rawMessage("while-away"));
    const state = await folder.sync(mirrorImporter(mirror, scopeView), checkpoint);
    await folder.sync(mirrorImporter(mirror, scopeView), state);
    expect(diffMirror(mirror, await mailboxTruth(client, "A"))).toBeUndefined();
    await account.close();
    await proxy.close();
    await client.logout();
  });

  it("a recreated mailbox (new UIDVALIDITY) is StateInvalidError, then a full sync", async () => {
    const { client, options } = await fresh(3);
    const account = createImapAccount(options);
    const folder = account.folder("A");
    const state = await folder.sync({});
    await recreate(client, "A");
    await expect(folder.sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
    const mirror: Mirror = new Map();
    await folder.sync(mirrorImporter(mirror, scopeView));
    expect(diffMirror(mirror, await mailboxTruth(client, "A"))).toBeUndefined();
    await account.close();
    await client.logout();
  });

  it("bounds a full sync by daysWithin (internal date) and keeps the window in the state", async () => {
    const { client, options } = await fresh(0);
    await client.append("A", rawMessage("old"), [], new Date("2020-01-01T00:00:00Z"));
    await client.append("A", rawMessage("new"), []);
    const account = createImapAccount(options);
    const folder = account.folder("A");
    const subjects: string[] = [];
    const importer = {
      update: (o: { data: unknown }) =>
        void subjects.push(String(projectMessage(o as never).subject)),
    };
    const state = await folder.sync(importer, undefined, { window: { daysWithin: 30 } });
    expect(subjects).toEqual([expect.stringMatching(/^new/)]);
    await client.append("A", rawMessage("newer"), []);
    await folder.sync(importer, state);
    expect(subjects).toHaveLength(2);
    expect(subjects[1]).toMatch(/^newer/);
    await expect(
      folder.sync({}, undefined, { window: { timeMin: "2020-01-01T00:00:00Z" } }),
    ).rejects.toBeInstanceOf(ArgumentError);
    await account.close();
    await client.logout();
  });

  it("IDLE: a message appended by a second connection reaches the sink and its sync imports it", async () => {
    const { client, options } = await fresh(1);
    const account = createImapAccount(options);
    const folder = account.folder("A");
    const mirror: Mirror = new Map();
    let state = await folder.sync(mirrorImporter(mirror, scopeView));
    const seen: Notification[] = [];
    let wake: (() => void) | undefined;
    const sub = folder.subscribe({
      update: (notification) => {
        seen.push(notification);
        wake?.();
      },
    });
    expect(folder.supportsPush).toBe(true);
    // IDLE starts asynchronously: append until a notification arrives (the first may race it).
    for (let i = 0; i < 30 && seen.length === 0; i++) {
      await client.append("A", rawMessage(`pushed${i}`));
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 500);
      });
    }
    sub.unsubscribe();
    expect(seen[0]).toMatchObject({ objectType: "item", eventType: "created", scope: "folder:A" });
    state = await folder.sync(mirrorImporter(mirror, scopeView), state);
    const truth = await mailboxTruth(client, "A");
    expect(diffMirror(mirror, truth)).toBeUndefined();
    expect(
      [...mirror.values()].some((e) =>
        String((e.data as { subject: string }).subject).startsWith("pushed"),
      ),
    ).toBe(true);
    await account.close();
    await client.logout();
  });

  it("IDLE is re-issued after idleRestartMs and keeps delivering", async () => {
    const { client, options } = await fresh(0);
    const account = createImapAccount({ ...options, idleRestartMs: 150 });
    const seen: Notification[] = [];
    const sub = account.folder("A").subscribe({ update: (x) => void seen.push(x) });
    await new Promise((r) => setTimeout(r, 1000)); // several IDLE restarts
    for (let i = 0; i < 30 && seen.length === 0; i++) {
      await client.append("A", rawMessage(`late${i}`));
      await new Promise((r) => setTimeout(r, 300));
    }
    sub.unsubscribe();
    expect(seen[0]).toMatchObject({ objectType: "item", eventType: "created" });
    await account.close();
    await client.logout();
  });

  it("server-wide notifications: an append to another mailbox reaches the sink", async () => {
    const { client, options } = await fresh(0);
    const account = createImapAccount(options);
    const seen: Notification[] = [];
    const sub = account.server().subscribe({ update: (x) => void seen.push(x) });
    for (let i = 0; i < 30 && seen.length === 0; i++) {
      await client.append("A", rawMessage(`srv${i}`));
      await new Promise((r) => setTimeout(r, 300));
    }
    sub.unsubscribe();
    expect(seen[0]).toMatchObject({
      objectType: "item",
      scope: "server",
      object: { parentKey: "A" },
    });
    expect(seen[0]?.object.sourcekey).toMatch(/^A\/\d+:/);
    await account.close();
    await client.logout();
  });

  it("fetch: source exports the full message; close() ends IDLE subscriptions", async () => {
    const { client, options } = await fresh(1);
    const account = createImapAccount({ ...options, fetch: "source" });
    const sources: string[] = [];
    await account.folder("A").sync({
      update: (o) => void sources.push(Buffer.from(String(o.data.source), "base64").toString()),
    });
    expect(sources[0]).toMatch(/Subject: a0/);
    let completed = false;
    account.folder("A").subscribe({ update: () => undefined });
    account
      .folder("A")
      .notifications()
      .subscribe({ complete: () => void (completed = true) });
    await account.close();
    expect(completed).toBe(true);
    await client.logout();
  });

  it("the CLI source opens imap://user@host:port/Mailbox with the password from the env", async () => {
    const { user, client } = await fresh(2);
    const url = new URL(`imap://${user}@127.0.0.1:${dovecot.port}/A?starttls=false`);
    const opened = await cliSource.open(url, {
      env: { DELTASYNC_IMAP_PASSWORD: dovecot.password },
    });
    expect(opened.key).toBe(`imap:${user}@127.0.0.1:${dovecot.port}/A`);
    expect(opened.key).not.toContain(dovecot.password);
    const outcome = await opened.syncable.exportChanges({}, undefined);
    expect(outcome.counts.update).toBe(2);
    await opened.close();
    await client.logout();
  });

  it("the CLI's --password reaches the connection (no DELTASYNC_IMAP_PASSWORD set)", async () => {
    const { user, client } = await fresh(1);
    const url = new URL(`imap://${user}@127.0.0.1:${dovecot.port}/A?starttls=false`);
    const env = credentialEnv({ password: dovecot.password }, cliSource);
    delete env.DELTASYNC_IMAP_PASSWORD;
    delete env.DELTASYNC_IMAP_ACCESS_TOKEN;
    const opened = await cliSource.open(url, { env });
    const outcome = await opened.syncable.exportChanges({}, undefined);
    expect(outcome.counts.update).toBe(1);
    await opened.close();
    await client.logout();
  });

  it("incremental syncs with nothing changed import nothing", async () => {
    const { client, options } = await fresh(4);
    const account = createImapAccount(options);
    const folder = account.folder("A");
    const state = await folder.sync({});
    const outcome = await folder.exportChanges({}, state);
    expect(outcome.counts).toEqual({ update: 0, delete: 0, read: 0, move: 0 });
    await account.close();
    await client.logout();
  });
});

/** A fake server offering only AUTH=XOAUTH2: records each SASL initial response, refuses it. */
async function xoauth2Server(): Promise<{
  port: number;
  responses: string[];
  close(): Promise<void>;
}> {
  const responses: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.write("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] fake\r\n");
    let buffer = "";
    let pending: string | undefined;
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      for (let i = buffer.indexOf("\r\n"); i >= 0; i = buffer.indexOf("\r\n")) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (pending !== undefined) {
          responses.push(line);
          socket.write(`${pending} NO [AUTHENTICATIONFAILED] invalid token\r\n`);
          pending = undefined;
          continue;
        }
        const [tag, command, mechanism, initial] = line.split(" ");
        if (command?.toUpperCase() === "CAPABILITY") {
          socket.write(`* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2\r\n${tag} OK done\r\n`);
        } else if (command?.toUpperCase() === "AUTHENTICATE" && mechanism === "XOAUTH2") {
          if (initial) {
            responses.push(initial);
            socket.write(`${tag} NO [AUTHENTICATIONFAILED] invalid token\r\n`);
          } else {
            pending = tag;
            socket.write("+ \r\n");
          }
        } else if (command?.toUpperCase() === "LOGOUT") {
          socket.write(`* BYE\r\n${tag} OK bye\r\n`);
          socket.end();
        } else {
          socket.write(`${tag} BAD unexpected\r\n`);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : 0,
    responses,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("imap CLI source", () => {
  it("parses imap:// and imaps:// URLs without credentials in the key", () => {
    expect(parseImapUrl(new URL("imap://alice@127.0.0.1:1143/INBOX"))).toMatchObject({
      host: "127.0.0.1",
      port: 1143,
      secure: false,
      user: "alice",
      mailbox: "INBOX",
      scope: "folder",
      key: "imap:alice@127.0.0.1:1143/INBOX",
    });
    expect(
      parseImapUrl(new URL("imaps://bob%40example.com@imap.example.com/Sent%20Items")),
    ).toMatchObject({
      port: 993,
      secure: true,
      user: "bob@example.com",
      mailbox: "Sent Items",
    });
    expect(parseImapUrl(new URL("imap://alice@host/?scope=server")).scope).toBe("server");
    expect(() => parseImapUrl(new URL("imap://alice:pw@host/INBOX"))).toThrow(ArgumentError);
    expect(() => parseImapUrl(new URL("imap://host/INBOX"))).toThrow(ArgumentError);
    expect(() => parseImapUrl(new URL("imap://alice@host/"))).not.toThrow();
  });

  it("needs a password or a token", async () => {
    await expect(
      cliSource.open(new URL("imap://alice@127.0.0.1/INBOX"), { env: {} }),
    ).rejects.toThrow(/--password.*DELTASYNC_IMAP_PASSWORD.*--token.*DELTASYNC_IMAP_ACCESS_TOKEN/);
    await expect(
      cliSource.open(new URL("imap://alice@127.0.0.1/INBOX"), { env: {} }),
    ).rejects.toBeInstanceOf(ArgumentError);
  });

  it.each([
    ["--token", { DELTASYNC_TOKEN: "tok-flag", DELTASYNC_IMAP_PASSWORD: "pw" }, "tok-flag"],
    ["DELTASYNC_IMAP_ACCESS_TOKEN", { DELTASYNC_IMAP_ACCESS_TOKEN: "tok-env" }, "tok-env"],
  ])("logs in with XOAUTH2 from %s", async (_, env, token) => {
    const server = await xoauth2Server();
    const url = new URL(`imap://alice@127.0.0.1:${server.port}/INBOX?starttls=false`);
    const opened = await cliSource.open(url, { env });
    await expect(opened.syncable.exportChanges({}, undefined)).rejects.toBeInstanceOf(AuthError);
    await opened.close();
    await server.close();
    // RFC 7628-style XOAUTH2 initial response: user=…^Aauth=Bearer …^A^A
    expect(server.responses.map((r) => Buffer.from(r, "base64").toString())).toContain(
      `user=alice\x01auth=Bearer ${token}\x01\x01`,
    );
  });
});

describe.skipIf(skip || !hasCommand("openssl"))("imap over TLS on Dovecot", () => {
  let dovecot: DovecotServer;
  beforeAll(async () => {
    dovecot = await startDovecot({ tls: true });
  });
  afterAll(() => dovecot?.stop());

  it("syncs over implicit TLS and over STARTTLS; refuses an untrusted certificate", async () => {
    const base = { host: "127.0.0.1", user: "tls", password: dovecot.password };
    const tls = createImapAccount({
      ...base,
      port: dovecot.tlsPort,
      secure: true,
      tlsInsecure: true,
    });
    await expect(tls.folder("INBOX").sync({})).resolves.toMatch(/^ds1\./);
    await tls.close();
    const starttls = createImapAccount({
      ...base,
      port: dovecot.port,
      starttls: true,
      tlsInsecure: true,
    });
    await expect(starttls.folder("INBOX").sync({})).resolves.toMatch(/^ds1\./);
    await starttls.close();
    const strict = createImapAccount({
      ...base,
      port: dovecot.tlsPort,
      secure: true,
      connectAttempts: 1,
    });
    await expect(strict.folder("INBOX").sync({})).rejects.toBeInstanceOf(ProtocolError);
    await strict.close();
  });

  // Last: after a failed login Dovecot delays further logins from the same IP for seconds.
  it("rejects bad credentials with AuthError", async () => {
    const bad = createImapAccount({
      host: "127.0.0.1",
      port: dovecot.port,
      user: "tls",
      password: "wrong",
      tlsInsecure: true,
    });
    await expect(bad.folder("INBOX").sync({})).rejects.toBeInstanceOf(AuthError);
    await bad.close();
  });
});
