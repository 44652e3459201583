/**
 * Issue 11 (correctness) and issue 10 item 6 against real Dovecot and Cyrus: unsolicited FETCH
 * responses during a multi-page fetch, hierarchy and mailbox changes across batch boundaries,
 * a mailbox Dovecot lists but cannot select, and a flag reverted before the state was saved.
 */
import type { ImapFlow } from "imapflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImapAccount, type ImapOptions } from "../../adapters/imap/index.js";
import { NotFoundError } from "../../src/core/errors.js";
import type { Importer, SyncObject } from "../../src/core/types.js";
import type { MirrorEntry } from "../../src/testing/harness.js";
import { diffMirror, type Mirror, mirrorImporter } from "../../src/testing/index.js";
import { CYRUS_COMMANDS, startCyrus } from "../servers/cyrus.js";
import { DOVECOT_COMMANDS, startDovecot } from "../servers/dovecot.js";
import { serverAvailability } from "../servers/process.js";
import {
  cyrusImapServer,
  dovecotImapServer,
  type ImapTestServer,
  imapHarness,
  mailboxTruth,
  mutator,
  projectMessage,
  rawMessage,
} from "./harness.js";

const view = {
  project: projectMessage,
  readOf: (o: SyncObject) => (o.data as { seen: boolean }).seen,
};
const folderView = { project: (o: SyncObject) => ({ path: (o.data as { path: string }).path }) };

interface Running {
  server: ImapTestServer;
  stop(): Promise<void>;
}

const servers: { name: string; skip: boolean; start(): Promise<Running> }[] = [
  {
    name: "Dovecot",
    skip: serverAvailability("Dovecot", DOVECOT_COMMANDS).skip,
    async start() {
      const d = await startDovecot();
      return { server: dovecotImapServer(d), stop: () => d.stop() };
    },
  },
  {
    name: "Cyrus",
    skip: serverAvailability("Cyrus", CYRUS_COMMANDS).skip,
    async start() {
      const c = await startCyrus();
      return { server: cyrusImapServer(c), stop: () => c.stop() };
    },
  },
];

/** Every message of every mailbox that can be selected now (a listed one that can't is skipped). */
async function serverTruth(client: ImapFlow): Promise<Map<string, MirrorEntry>> {
  const all = new Map<string, MirrorEntry>();
  for (const e of await client.list({ listOnly: true })) {
    if ([...e.flags].some((f) => /\\(noselect|nonexistent)/i.test(f))) continue;
    await mailboxTruth(client, e.path, all, true).catch(() => undefined);
  }
  return all;
}

async function listTruth(client: ImapFlow): Promise<Map<string, MirrorEntry>> {
  const all = new Map<string, MirrorEntry>();
  for (const e of await client.list({ listOnly: true })) {
    all.set(e.path, {
      type: "folder",
      ...(e.parentPath ? { parentKey: e.parentPath } : {}),
      data: { path: e.path },
    });
  }
  return all;
}

let users = 0;

for (const spec of servers) {
  describe.skipIf(spec.skip)(`imap robustness on ${spec.name}`, () => {
    let running: Running;
    let server: ImapTestServer;
    beforeAll(async () => {
      running = await spec.start();
      server = running.server;
    });
    afterAll(() => running?.stop());

    async function fresh(): Promise<{ client: ImapFlow; options: ImapOptions; sep: string }> {
      const user = `r${process.pid}x${++users}`;
      server.addUser(user);
      const client = await mutator(server, user);
      const sep =
        (await client.list({ listOnly: true })).find((e) => e.path === "INBOX")?.delimiter ?? "/";
      const options = { host: "127.0.0.1", port: server.port, user, password: server.password };
      return { client, options, sep };
    }

    it.each(["auto", "condstore", "plain"] as const)(
      "unsolicited FETCH (FLAGS) during a 1,200-message multi-page fetch is never message data (%s)",
      async (mode) => {
        const { client, options } = await fresh();
        await client.mailboxCreate("A");
        for (let i = 0; i < 1200; i++) {
          await client.append("A", rawMessage(`big${i}`), i % 3 ? [] : ["\\Seen"]);
        }
        await client.mailboxOpen("A");
        const account = createImapAccount({ ...options, mode, chunkSize: 500 });
        const mirror: Mirror = new Map();
        const inner = mirrorImporter(mirror, view);
        let calls = 0;
        // Another client changes flags all over the mailbox while the pages are fetched: the
        // server reports them to the syncing session as unsolicited `* n FETCH (FLAGS …)`.
        const importer: Importer = {
          ...inner,
          async update(obj, flags) {
            calls++;
            if (calls % 250 === 1) {
              const uids = [3, 400, 650, 900, 1190].map((u) => u + (calls % 7)).join(",");
              await client.messageFlagsAdd(uids, ["\\Flagged"], { uid: true });
              await client.messageFlagsRemove(uids, ["\\Seen"], { uid: true });
              await client.messageFlagsAdd(`${calls + 1}:${calls + 3}`, ["\\Seen"], { uid: true });
            }
            return inner.update?.(obj, flags);
          },
        };
        const folder = account.folder("A");
        let state = await folder.sync(importer);
        state = await folder.sync(importer, state);
        await folder.sync(inner, state);
        expect([...mirror.keys()].filter((k) => !/^\d+:\d+$/.test(k))).toEqual([]);
        expect(
          [...mirror.values()].filter((e) => !(e.data as { subject?: string }).subject),
        ).toEqual([]);
        expect(diffMirror(mirror, await mailboxTruth(client, "A"))).toBeUndefined();
        await account.close();
        await client.logout();
      },
      120_000,
    );

    it("hierarchy: mailboxes created and deleted between rounds stopped by maxChanges", async () => {
      const { client, options, sep } = await fresh();
      for (const name of ["P0", "P1", "P2", "P3", `P3${sep}c`]) await client.mailboxCreate(name);
      const account = createImapAccount(options);
      const hierarchy = account.hierarchy();
      const mirror: Mirror = new Map();
      const importer = mirrorImporter(mirror, folderView);
      let state = await hierarchy.sync(importer);
      const script: ((c: ImapFlow) => Promise<unknown>)[] = [
        (c) => c.mailboxCreate("X1"),
        (c) => c.mailboxCreate("X2"),
        (c) => c.mailboxDelete("P1"),
        (c) => c.mailboxCreate("X3"),
        (c) => c.mailboxDelete("X1"),
        (c) => c.mailboxDelete("P2"),
        (c) => c.mailboxCreate("X4"),
        (c) => c.mailboxCreate("P1"),
        (c) => c.mailboxRename("X2", "Y2"),
        (c) => c.mailboxDelete("P0"),
      ];
      for (let i = 0; i < script.length; i += 2) {
        await script[i]?.(client);
        await script[i + 1]?.(client);
        state = (await hierarchy.exportChanges(importer, state, { maxChanges: 1 })).state;
      }
      for (let i = 0; i < 20; i++) {
        const out = await hierarchy.exportChanges(importer, state, { maxChanges: 1 });
        state = out.state;
        if (out.complete) break;
      }
      expect(diffMirror(mirror, await listTruth(client))).toBeUndefined();
      await account.close();
      await client.logout();
    });

    it("server scope: mailboxes deleted (and one recreated) across maxChanges rounds", async () => {
      const { client, options } = await fresh();
      for (const box of ["A", "B", "C", "D"]) {
        await client.mailboxCreate(box);
        await client.append(box, rawMessage(`in-${box}`));
      }
      const account = createImapAccount(options);
      const scope = account.server();
      const mirror: Mirror = new Map();
      const importer = mirrorImporter(mirror, view);
      let state = await scope.sync(importer);
      for (const box of ["B", "C", "D"]) await client.mailboxDelete(box);
      state = (await scope.exportChanges(importer, state, { maxChanges: 1 })).state;
      // B comes back before the round resumes: the resume must still remove C and D.
      await client.mailboxCreate("B");
      await client.append("B", rawMessage("in-B-again"));
      for (let i = 0; i < 20; i++) {
        const out = await scope.exportChanges(importer, state, { maxChanges: 1 });
        state = out.state;
        if (out.complete) break;
      }
      expect(diffMirror(mirror, await serverTruth(client))).toBeUndefined();
      await account.close();
      await client.logout();
    });

    it("a mailbox deleted while it has children (still listed) is treated as gone", async () => {
      const { client, options, sep } = await fresh();
      const child = `B${sep}x`;
      for (const box of ["A", "B", child]) {
        await client.mailboxCreate(box);
        await client.append(box, rawMessage(`in-${box}`));
      }
      const account = createImapAccount(options);
      const scope = account.server();
      const mirror: Mirror = new Map();
      const importer = mirrorImporter(mirror, view);
      let state = await scope.sync(importer);
      // Dovecot 2.3 deletes B but keeps listing it without \Noselect; SELECT then answers
      // `NO Mailbox doesn't exist: B` without [NONEXISTENT]. Cyrus refuses the DELETE (NO).
      const deleted = await client.mailboxDelete("B").then(
        () => true,
        (e: { responseStatus?: string }) => {
          if (e.responseStatus !== "NO") throw e;
          return false;
        },
      );
      state = await scope.sync(importer, state);
      state = await scope.sync(importer, state);
      expect(diffMirror(mirror, await serverTruth(client))).toBeUndefined();
      const listed = (await client.list({ listOnly: true })).some((e) => e.path === "B");
      if (deleted && listed)
        await expect(account.folder("B").sync({})).rejects.toBeInstanceOf(NotFoundError);
      await account.close();
      await client.logout();
    });

    it("the server harness's truth: a renamed parent deleted with its child is empty", async () => {
      // The conformance kit's history: B gets its child B.x, is renamed to C (so C.x), and C is
      // deleted. The harness's delete only removes the children it knows by name (B.x), so C
      // goes with C.x left: Dovecot still lists C but SELECT answers `NO Mailbox doesn't exist`.
      const backend = await imapHarness(server, { kind: "server" }).setup();
      try {
        const runs = backend.scopes.map((scope) => ({ scope, mirror: new Map() as Mirror }));
        const states = await Promise.all(
          runs.map((r) => r.scope.syncable.sync(mirrorImporter(r.mirror, r.scope))),
        );
        for (const op of [
          { t: "create", box: 3 },
          { t: "rename", box: 1, to: 2 },
          { t: "delete", box: 2 },
        ] as const)
          await backend.apply(op);
        for (const [i, r] of runs.entries()) {
          await r.scope.syncable.sync(mirrorImporter(r.mirror, r.scope), states[i]);
          expect(diffMirror(r.mirror, await r.scope.truth()), r.scope.name).toBeUndefined();
        }
      } finally {
        await backend.teardown();
      }
    });

    it.each(["auto", "condstore", "plain"] as const)(
      "a round stopped inside a page resumes exactly after deletes, reverts and inserts (%s)",
      async (mode) => {
        const { client, options } = await fresh();
        await client.mailboxCreate("A");
        for (let i = 0; i < 9; i++) await client.append("A", rawMessage(`p${i}`));
        await client.mailboxOpen("A");
        const mirror: Mirror = new Map();
        const importer = mirrorImporter(mirror, view);
        const open = () => createImapAccount({ ...options, mode, chunkSize: 4 });
        let account = open();
        let state = await account.folder("A").sync(importer);
        await client.messageFlagsAdd("1:9", ["\\Flagged"], { uid: true });
        // Stopped inside the first page: UIDs 1-2 delivered (flagged), 3-4 not yet.
        state = (await account.folder("A").exportChanges(importer, state, { maxChanges: 2 })).state;
        await account.close();
        await client.messageDelete("1", { uid: true }); // delivered, then gone
        await client.messageFlagsRemove("2", ["\\Flagged"], { uid: true }); // delivered, reverted
        await client.messageFlagsRemove("3", ["\\Flagged"], { uid: true }); // not yet delivered
        await client.append("A", rawMessage("inserted"));
        account = open(); // a new process: no pages kept
        const out = await account.folder("A").exportChanges(importer, state);
        expect(out.complete).toBe(true);
        expect(diffMirror(mirror, await mailboxTruth(client, "A"))).toBeUndefined();
        await account.close();
        await client.logout();
      },
    );

    it.each(["auto", "condstore", "plain"] as const)(
      "the expunge of a mailbox's last message is delivered (%s)",
      async (mode) => {
        const { client, options } = await fresh();
        await client.mailboxCreate("A");
        await client.append("A", rawMessage("only"));
        const account = createImapAccount({ ...options, mode });
        const mirror: Mirror = new Map();
        const importer = mirrorImporter(mirror, view);
        const state = await account.folder("A").sync(importer);
        await client.mailboxOpen("A");
        await client.messageDelete("1:*");
        await account.folder("A").sync(importer, state);
        expect(mirror.size).toBe(0);
        await account.close();
        await client.logout();
      },
    );

    it.each(["auto", "condstore"] as const)(
      "a flag applied, then reverted before the state was saved, is delivered again (%s)",
      async (mode) => {
        const { client, options } = await fresh();
        await client.mailboxCreate("A");
        for (let i = 0; i < 4; i++) await client.append("A", rawMessage(`r${i}`));
        await client.mailboxOpen("A");
        const account = createImapAccount({ ...options, mode });
        const folder = account.folder("A");
        const mirror: Mirror = new Map();
        const importer = mirrorImporter(mirror, view);
        const saved = await folder.sync(importer);
        await client.messageFlagsAdd("2", ["\\Seen", "\\Flagged"], { uid: true });
        await folder.sync(importer, saved); // applied; the process dies before saving the state
        await client.messageFlagsRemove("2", ["\\Seen", "\\Flagged"], { uid: true });
        await folder.sync(importer, saved);
        expect(diffMirror(mirror, await mailboxTruth(client, "A"))).toBeUndefined();
        await account.close();
        await client.logout();
      },
    );
  });
}
