/**
 * The IMAP write target (two-way sync) against a real Dovecot: each operation, then histories.
 */
import { afterAll, beforeAll, describe } from "vitest";
import { DOVECOT_COMMANDS, type DovecotServer, startDovecot } from "../servers/dovecot.js";
import { serverAvailability } from "../servers/process.js";
import { dovecotImapServer, type ImapTestServer } from "./harness.js";
import { writeSuite } from "./write-suite.js";

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
});
