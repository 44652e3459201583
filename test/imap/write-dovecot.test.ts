/**
 * The IMAP write target (two-way sync) against a real Dovecot: each operation, then histories.
 */
import { fc } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, it } from "vitest";
import { DOVECOT_COMMANDS, type DovecotServer, startDovecot } from "../servers/dovecot.js";
import { serverAvailability } from "../servers/process.js";
import { dovecotImapServer, type ImapTestServer } from "./harness.js";
import { imapOps, imapTwoWayHistory } from "./write-histories.js";
import { writeSuite } from "./write-suite.js";

const RUNS = Number(process.env.IMAP_TWO_WAY_RUNS ?? 50);
const policy = fc.constantFrom("client-wins" as const, "server-wins" as const, "ask" as const);

const { skip } = serverAvailability("Dovecot", DOVECOT_COMMANDS);

describe.skipIf(skip)("imap write target: Dovecot", () => {
  let dovecot: DovecotServer;
  let server: ImapTestServer;
  beforeAll(async () => {
    dovecot = await startDovecot();
    server = dovecotImapServer(dovecot);
  });
  afterAll(() => dovecot?.stop());
  writeSuite(() => server);
  it(`histories of local and remote edits with crashes converge (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(policy, imapOps, (p, ops) => imapTwoWayHistory(server, p, ops)),
      { numRuns: RUNS },
    );
  }, 600_000);
});
