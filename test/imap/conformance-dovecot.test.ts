/**
 * The conformance kit against a real Dovecot: QRESYNC (auto), CONDSTORE-only and plain modes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Syncable } from "../../src/core/syncable.js";
import type { Importer } from "../../src/core/types.js";
import { checkConformance } from "../../src/testing/index.js";
import { DOVECOT_COMMANDS, type DovecotServer, startDovecot } from "../servers/dovecot.js";
import { serverAvailability } from "../servers/process.js";
import { dovecotImapServer, type ImapTestServer, imapHarness } from "./harness.js";

const { skip } = serverAvailability("Dovecot", DOVECOT_COMMANDS);
const runs = Number(process.env.IMAP_CONFORMANCE_RUNS ?? 60);

describe.skipIf(skip)("imap conformance: Dovecot", () => {
  let dovecot: DovecotServer;
  let server: ImapTestServer;
  beforeAll(async () => {
    dovecot = await startDovecot();
    server = dovecotImapServer(dovecot);
  });
  afterAll(() => dovecot?.stop());

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
  it("the harness catches an adapter that drops read-state changes", async () => {
    // Only the plain mode uses the read channel (mod-sequence modes re-send the message).
    const harness = imapHarness(server, { kind: "folder", mode: "plain" });
    const broken: typeof harness = {
      ...harness,
      async setup() {
        const backend = await harness.setup();
        const scopes = backend.scopes.map((scope) => {
          const s = scope.syncable;
          const dropRead = (i: Importer): Importer => ({ ...i, read: undefined });
          const syncable: Syncable = {
            ...s,
            adapter: s.adapter,
            scope: s.scope,
            supportsPush: s.supportsPush,
            sync: (i, st, o) => s.sync(dropRead(i), st, o),
            exportChanges: (i, st, o) => s.exportChanges(dropRead(i), st, o),
            notifications: (f) => s.notifications(f),
            subscribe: (sink, f) => s.subscribe(sink, f),
          };
          return { ...scope, syncable };
        });
        return { ...backend, scopes };
      },
    };
    await expect(checkConformance(broken, { numRuns: 100, seed: 7 })).rejects.toThrow(
      /read|stale|Property failed/,
    );
  });
  it("folder scope, CONDSTORE only", async () => {
    await checkConformance(imapHarness(server, { kind: "folder", mode: "condstore" }), {
      numRuns: 10,
      maxSteps: 12,
    });
  }, 900_000);
  it("folder scope, plain UID + FLAGS diff", async () => {
    await checkConformance(imapHarness(server, { kind: "folder", mode: "plain" }), {
      numRuns: 10,
      maxSteps: 12,
    });
  }, 900_000);
});
