/**
 * INBOX on a long-lived account (`watch`): rounds after the first keep INBOX selected and bring
 * the view up to date in place (NOOP + STATUS of the selected mailbox) instead of a STATUS on the
 * second connection. Random changes by another client between rounds — flags, expunges,
 * appends, moves in and out, emptying it (as a RENAME of INBOX does) — must all reach the mirror, on
 * Dovecot and Cyrus; and no round after the first may STATUS INBOX on the second connection.
 */
import fc from "fast-check";
import type { ImapFlow } from "imapflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImapAccount } from "../../adapters/imap/index.js";
import { diffMirror, type Mirror, mirrorImporter } from "../../src/testing/index.js";
import { CYRUS_COMMANDS, startCyrus } from "../servers/cyrus.js";
import { DOVECOT_COMMANDS, startDovecot } from "../servers/dovecot.js";
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

const runs = Number(process.env.IMAP_INBOX_RUNS ?? 15);
const view = {
  project: projectMessage,
  readOf: (o: { data: unknown }) => (o.data as { seen: boolean }).seen,
};

type Op =
  | { t: "append"; seen: boolean }
  | { t: "flag"; msg: number; flag: "\\Seen" | "\\Flagged"; on: boolean }
  | { t: "expunge"; msg: number }
  | { t: "moveOut"; msg: number }
  | { t: "moveIn" }
  | { t: "empty" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant("append" as const), seen: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("flag" as const),
      msg: fc.nat(30),
      flag: fc.constantFrom("\\Seen" as const, "\\Flagged" as const),
      on: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("expunge" as const), msg: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("moveOut" as const), msg: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("moveIn" as const) }) },
  { weight: 1, arbitrary: fc.constant({ t: "empty" as const }) },
);

/** Applies `op` through the other client (`client` has INBOX selected between ops). */
async function apply(client: ImapFlow, op: Op): Promise<void> {
  if (op.t === "append") {
    await client.append("INBOX", rawMessage("live"), op.seen ? ["\\Seen"] : []);
    return;
  }
  if (op.t === "moveIn") {
    await client.append("Side", rawMessage("side"));
    await client.mailboxOpen("Side");
    await client.messageMove("*", "INBOX");
    return;
  }
  if (op.t === "empty") {
    // What a RENAME of INBOX does (RFC 3501 §6.3.5; neither server here allows it): every
    // message leaves, the mailbox stays.
    const box = await client.mailboxOpen("INBOX");
    if (box.exists > 0) await client.messageMove("1:*", "Side");
    return;
  }
  const box = await client.mailboxOpen("INBOX");
  if (box.exists === 0) return;
  const seq = String((op.msg % box.exists) + 1);
  if (op.t === "flag") {
    if (op.on) await client.messageFlagsAdd(seq, [op.flag]);
    else await client.messageFlagsRemove(seq, [op.flag]);
  } else if (op.t === "expunge") {
    await client.messageDelete(seq);
  } else {
    await client.messageMove(seq, "Side");
  }
}

function suite(
  name: string,
  commands: string[],
  start: () => Promise<{ server: ImapTestServer; stop: () => Promise<void> }>,
) {
  const { skip } = serverAvailability(name, commands);
  describe.skipIf(skip)(`INBOX on a long-lived account: ${name}`, () => {
    let server: ImapTestServer;
    let stop: () => Promise<void>;
    let proxy: TcpProxy;
    /** Commands the adapter sent, as lines (both of its connections go through the proxy). */
    const sent: string[] = [];
    let users = 0;
    beforeAll(async () => {
      ({ server, stop } = await start());
      proxy = await startTcpProxy(server.port, () => ({
        up(b) {
          sent.push(...b.toString("latin1").split("\r\n").filter(Boolean));
          return b;
        },
      }));
    });
    afterAll(async () => {
      proxy?.close();
      await stop?.();
    });

    it("every change reaches the mirror; later rounds never STATUS INBOX on the second connection", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(opArb, { maxLength: 6 }), { minLength: 2, maxLength: 6 }),
          fc.integer({ min: 0, max: 12 }),
          async (rounds, seed) => {
            const user = `live${++users}`;
            server.addUser(user);
            const client = await mutator(server, user);
            const account = createImapAccount({
              host: "127.0.0.1",
              port: proxy.port,
              user,
              password: server.password,
            });
            try {
              await client.mailboxCreate("Side").catch(() => undefined);
              for (let i = 0; i < seed; i++)
                await apply(client, { t: "append", seen: i % 2 === 0 });
              const mirror: Mirror = new Map();
              const inbox = account.folder("INBOX");
              let state = await inbox.sync(mirrorImporter(mirror, view));
              for (const ops of rounds) {
                for (const op of ops) await apply(client, op);
                sent.length = 0;
                state = await inbox.sync(mirrorImporter(mirror, view), state);
                // The second connection's STATUS asks for UIDVALIDITY; the refresh on the main
                // connection (the selected mailbox's view) does not.
                const statuses = sent.filter((l) => / STATUS "?INBOX"? \(UIDVALIDITY/i.test(l));
                expect(statuses).toEqual([]);
                expect(diffMirror(mirror, await mailboxTruth(client, "INBOX"))).toBeUndefined();
              }
            } finally {
              await account.close();
              await client.logout().catch(() => undefined);
            }
          },
        ),
        { numRuns: runs },
      );
    });
  });
}

suite("Dovecot", DOVECOT_COMMANDS, async () => {
  const dovecot = await startDovecot();
  return { server: dovecotImapServer(dovecot), stop: () => dovecot.stop() };
});
suite("Cyrus", CYRUS_COMMANDS, async () => {
  const cyrus = await startCyrus();
  return { server: cyrusImapServer(cyrus), stop: () => cyrus.stop() };
});
