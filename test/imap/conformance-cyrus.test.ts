/**
 * The conformance kit against a real Cyrus 3.6 (QRESYNC).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImapAccount } from "../../adapters/imap/index.js";
import { AuthError, NotFoundError } from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import { checkConformance } from "../../src/testing/index.js";
import { CYRUS_COMMANDS, type CyrusServer, startCyrus } from "../servers/cyrus.js";
import { serverAvailability } from "../servers/process.js";
import {
  cyrusImapServer,
  type ImapTestServer,
  imapHarness,
  mutator,
  rawMessage,
} from "./harness.js";

const { skip } = serverAvailability("Cyrus", CYRUS_COMMANDS);
const runs = Number(process.env.IMAP_CONFORMANCE_RUNS ?? 60);

describe.skipIf(skip)("imap conformance: Cyrus", () => {
  let cyrus: CyrusServer;
  let server: ImapTestServer;
  beforeAll(async () => {
    cyrus = await startCyrus();
    server = cyrusImapServer(cyrus);
  });
  afterAll(() => cyrus?.stop());

  it("typed errors: no such mailbox, then bad credentials", async () => {
    const options = { host: "127.0.0.1", port: cyrus.imapPort, user: cyrus.user };
    const good = createImapAccount({ ...options, password: cyrus.password });
    await expect(good.folder("Nope").sync({})).rejects.toBeInstanceOf(NotFoundError);
    await good.close();
    const bad = createImapAccount({ ...options, password: "wrong" });
    await expect(bad.folder("INBOX").sync({})).rejects.toBeInstanceOf(AuthError);
    await bad.close();
  });
  it("IDLE: an append by a second connection reaches the sink; its sync imports it", async () => {
    const user = "idler";
    cyrus.addUser(user);
    const client = await mutator(server, user);
    await client.mailboxCreate("A");
    const account = createImapAccount({
      host: "127.0.0.1",
      port: cyrus.imapPort,
      user,
      password: cyrus.password,
    });
    const folder = account.folder("A");
    let state = await folder.sync({});
    const seen: Notification[] = [];
    const sub = folder.subscribe({ update: (x) => void seen.push(x) });
    for (let i = 0; i < 30 && seen.length === 0; i++) {
      await client.append("A", rawMessage(`idle${i}`));
      await new Promise((r) => setTimeout(r, 500));
    }
    sub.unsubscribe();
    expect(seen[0]).toMatchObject({ objectType: "item", eventType: "created", scope: "folder:A" });
    const subjects: string[] = [];
    state = await folder.sync(
      { update: (o) => void subjects.push(String(o.data.envelope?.subject)) },
      state,
    );
    expect(subjects.some((s) => s.startsWith("idle"))).toBe(true);
    await account.close();
    await client.logout();
  });
  it("folder scope with UIDVALIDITY expiry (QRESYNC)", async () => {
    await checkConformance(imapHarness(server, { kind: "folder" }), {
      numRuns: runs,
      maxSteps: 20,
    });
  }, 900_000);
  it("server-wide composite and hierarchy", async () => {
    await checkConformance(imapHarness(server, { kind: "server" }), {
      numRuns: runs,
      maxSteps: 20,
    });
  }, 900_000);
});
