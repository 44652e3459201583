/**
 * The IMAP write target (two-way sync) against a real Cyrus: each operation, then histories.
 */
import { afterAll, beforeAll, describe } from "vitest";
import { CYRUS_COMMANDS, type CyrusServer, startCyrus } from "../servers/cyrus.js";
import { serverAvailability } from "../servers/process.js";
import { cyrusImapServer, type ImapTestServer } from "./harness.js";
import { writeSuite } from "./write-suite.js";

const { skip } = serverAvailability("Cyrus", CYRUS_COMMANDS);

describe.skipIf(skip)("imap write target: Cyrus", () => {
  let cyrus: CyrusServer;
  let server: ImapTestServer;
  beforeAll(async () => {
    cyrus = await startCyrus();
    server = cyrusImapServer(cyrus);
  });
  afterAll(() => cyrus?.stop());
  writeSuite(() => server);
});
