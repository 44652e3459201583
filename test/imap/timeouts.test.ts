/**
 * Issue 11 item 4: a server that never greets, one that greets and then stalls, and one that
 * stalls after login (a proxy in front of Dovecot) must not hold a sync for minutes: connect /
 * greeting / command deadlines, the AbortSignal honoured during login, and `close()` that always
 * finishes. No timing assertions: a test that hangs fails on vitest's timeout.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImapAccount } from "../../adapters/imap/index.js";
import { TransientError } from "../../src/core/errors.js";
import { DOVECOT_COMMANDS, type DovecotServer, startDovecot } from "../servers/dovecot.js";
import { serverAvailability } from "../servers/process.js";
import { startTcpProxy } from "../servers/tcp-proxy.js";
import { mutator, rawMessage } from "./harness.js";

interface Staller {
  port: number;
  /** Resolves once a client has connected (and, for `greet`, sent its first command). */
  reached: Promise<void>;
  /** Resolves once the client closed its connection. */
  disconnected: Promise<void>;
  close(): Promise<void>;
}

/** A TCP server that accepts and never greets (`silent`), or greets and never answers (`greet`). */
async function staller(kind: "silent" | "greet"): Promise<Staller> {
  const sockets = new Set<Socket>();
  let reach: () => void = () => undefined;
  const reached = new Promise<void>((r) => {
    reach = r;
  });
  let disconnect: () => void = () => undefined;
  const disconnected = new Promise<void>((r) => {
    disconnect = r;
  });
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => disconnect());
    if (kind === "silent") reach();
    else {
      socket.write("* OK IMAP4rev1 Service Ready\r\n");
      socket.once("data", () => reach());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    reached,
    disconnected,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const base = { host: "127.0.0.1", user: "alice", password: "secret", connectAttempts: 1 };

describe("imap deadlines and abort against a stalling TCP server", () => {
  it("a server that accepts and never greets fails after greetingTimeoutMs", async () => {
    const s = await staller("silent");
    const account = createImapAccount({ ...base, port: s.port, greetingTimeoutMs: 200 });
    const failed = account.folder("INBOX").sync({});
    await expect(failed).rejects.toBeInstanceOf(TransientError);
    await expect(failed).rejects.toThrow(/greeting/i);
    await account.close();
    await s.close();
  }, 10_000);

  it("a server that greets and never answers fails after commandTimeoutMs", async () => {
    const s = await staller("greet");
    const account = createImapAccount({ ...base, port: s.port, commandTimeoutMs: 200 });
    const failed = account.folder("INBOX").sync({});
    await expect(failed).rejects.toBeInstanceOf(TransientError);
    await expect(failed).rejects.toThrow(/no answer within/);
    await account.close();
    await s.close();
  }, 10_000);

  it("the sync's AbortSignal stops a pending login at once", async () => {
    const s = await staller("greet");
    const account = createImapAccount({ ...base, port: s.port });
    const controller = new AbortController();
    const failed = account.folder("INBOX").sync({}, undefined, { signal: controller.signal });
    await s.reached;
    controller.abort();
    await expect(failed).rejects.toMatchObject({ name: "AbortError" });
    await account.close();
    await s.close();
  }, 10_000);

  it("account.close() finishes while a login is pending, and the sync fails", async () => {
    for (const kind of ["silent", "greet"] as const) {
      const s = await staller(kind);
      const account = createImapAccount({ ...base, port: s.port });
      const failed = account.folder("INBOX").sync({});
      failed.catch(() => undefined);
      await s.reached;
      await account.close();
      await expect(failed).rejects.toBeInstanceOf(TransientError);
      await s.close();
    }
  }, 10_000);

  it("unsubscribing a push channel whose login is pending closes its connection", async () => {
    const s = await staller("greet");
    const account = createImapAccount({ ...base, port: s.port });
    const sub = account.folder("INBOX").subscribe({ update: () => undefined });
    await s.reached;
    sub.unsubscribe();
    await s.disconnected;
    await account.close();
    await s.close();
  }, 10_000);
});

const { skip } = serverAvailability("Dovecot", DOVECOT_COMMANDS);

describe.skipIf(skip)("imap command deadline after login (Dovecot behind a stalling proxy)", () => {
  let dovecot: DovecotServer;
  beforeAll(async () => {
    dovecot = await startDovecot();
  });
  afterAll(() => dovecot?.stop());

  it("a SELECT the server never answers is cut after commandTimeoutMs and retried", async () => {
    const client = await mutator(
      { name: "dovecot", port: dovecot.port, password: dovecot.password, addUser: () => {} },
      "stall",
    );
    await client.mailboxCreate("A");
    await client.append("A", rawMessage("stalled"));
    let connections = 0;
    // The first connection's answers stop once it sends SELECT; later connections work.
    const proxy = await startTcpProxy(dovecot.port, () => {
      const n = ++connections;
      let stalled = false;
      return {
        up(b) {
          if (n === 1 && b.toString("latin1").includes("SELECT")) stalled = true;
          return b;
        },
        down: (b) => (stalled ? undefined : b),
      };
    });
    const account = createImapAccount({
      ...base,
      user: "stall",
      password: dovecot.password,
      port: proxy.port,
      commandTimeoutMs: 300,
      connectAttempts: 2,
      backoffMs: 1,
    });
    const subjects: string[] = [];
    await account
      .folder("A")
      .sync({ update: (o) => void subjects.push(String(o.data.envelope?.subject)) });
    expect(subjects).toEqual(["stalled"]);
    expect(connections).toBe(2);
    await account.close();
    await proxy.close();
    await client.logout();
  }, 20_000);
});
