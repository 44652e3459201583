/**
 * Two-way histories against a real CalDAV server: an app's SQLite mirror edited locally, a
 * second client editing the server over plain HTTP, pushes that crash before or after the
 * server's write; after quiescence the mirror and the server hold the same events, with no
 * duplicate UIDs.
 */
import Database from "better-sqlite3";
import fc from "fast-check";
import { expect } from "vitest";
import { davWriteTarget, sameText } from "../../adapters/dav/dav-push.js";
import { createDavAccount } from "../../adapters/dav/index.js";
import { PushBlockedError } from "../../src/core/errors.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { push } from "../../src/two-way/push.js";
import { settlePushed } from "../../src/two-way/settle.js";
import type { ConflictPolicy, WriteTarget } from "../../src/two-way/types.js";
import { basicAuth, DavTestClient, eventBody } from "../dav/dav-harness.js";

export interface DavTwoWayServer {
  url: string;
  user?: string;
  password?: string;
  calendarHome: string;
}

type Op =
  | { t: "lcreate"; v: string }
  | { t: "lupdate"; pick: number; v: string }
  | { t: "ldelete"; pick: number }
  | { t: "rcreate"; v: string }
  | { t: "rupdate"; pick: number; v: string }
  | { t: "rdelete"; pick: number }
  | { t: "push"; crashAt: number; after: boolean }
  | { t: "pull" };

const v = fc.constantFrom("a", "b");
const pick = fc.nat(10);
export const davOps = fc.array(
  fc.oneof(
    fc.record({ t: fc.constant("lcreate" as const), v }),
    { weight: 2, arbitrary: fc.record({ t: fc.constant("lupdate" as const), pick, v }) },
    fc.record({ t: fc.constant("ldelete" as const), pick }),
    fc.record({ t: fc.constant("rcreate" as const), v }),
    fc.record({ t: fc.constant("rupdate" as const), pick, v }),
    fc.record({ t: fc.constant("rdelete" as const), pick }),
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("push" as const),
        crashAt: fc.nat(3),
        after: fc.boolean(),
      }),
    },
    fc.record({ t: fc.constant("pull" as const) }),
  ),
  { minLength: 1, maxLength: 14 },
);

class Crash extends Error {}

function crashing(target: WriteTarget, at: number, after: boolean): WriteTarget {
  let n = 0;
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const crash = ++n === at;
      if (crash && !after) throw new Crash("before write");
      const r = await fn(...a);
      if (crash) throw new Crash("after write");
      return r;
    };
  return {
    ...target,
    create: wrap(target.create),
    update: wrap(target.update),
    delete: wrap(target.delete),
  };
}

const uidOf = (raw: string) => /^UID:(.*)$/m.exec(raw)?.[1]?.trim() ?? "";
let history = 0;

export async function davTwoWayHistory(
  server: DavTwoWayServer,
  policy: "client-wins" | "server-wins" | "ask",
  ops: Op[],
): Promise<void> {
  const auth = basicAuth(server.user, server.password);
  const client = new DavTestClient(server.url, auth);
  const collection = `${server.calendarHome}tw${process.pid}x${++history}/`;
  await client.makeCalendar(collection);
  const account = createDavAccount({
    url: server.url,
    username: server.user,
    password: server.password,
    retry: { retries: 0 },
  });
  const db = new Database(":memory:");
  const target = davWriteTarget(account, collection);
  const pair = `dav:${collection}`;
  const mirror = createSqliteMirror(db, { source: pair, keyFor: target.keyFor });
  const scope = account.collection(collection);
  let state: string | undefined;
  const pull = async () => {
    state = await scope.sync(mirror.importer, state);
    await settlePushed(target, mirror.outbox, { pair, ...mirror.pushCallbacks });
  };
  const options = {
    pair,
    policy: policy as ConflictPolicy,
    retry: false as const,
    ...mirror.pushCallbacks,
  };
  let n = 0;
  try {
    await client.put(`${collection}seed.ics`, eventBody("seed", "a"));
    await pull();
    for (const o of ops) {
      const rows = mirror.rows();
      const row = "pick" in o ? rows[o.pick % Math.max(1, rows.length)] : undefined;
      const members = [...(await client.members(collection, false)).keys()].sort();
      const member = "pick" in o ? members[o.pick % Math.max(1, members.length)] : undefined;
      switch (o.t) {
        case "lcreate":
          mirror.edits.create({
            data: { raw: eventBody(`l${history}-${++n}`, o.v) },
            parentKey: collection,
          });
          break;
        case "lupdate":
          if (row) {
            const raw = eventBody(uidOf((row.data as { raw: string }).raw), `${o.v}${++n}`);
            mirror.edits.update(row.id, { raw });
          }
          break;
        case "ldelete":
          if (row) mirror.edits.remove(row.id);
          break;
        case "rcreate":
          await client.put(`${collection}r${++n}.ics`, eventBody(`r${history}-${n}`, o.v));
          break;
        case "rupdate":
          if (member) {
            const body = (await client.members(collection, false)).get(member)?.body ?? "";
            await client.put(member, eventBody(uidOf(body), `${o.v}${++n}`));
          }
          break;
        case "rdelete":
          if (member) await client.send("DELETE", member);
          break;
        case "push":
          try {
            await push(crashing(target, o.crashAt, o.after), mirror.outbox, options);
          } catch (error) {
            if (!(error instanceof PushBlockedError && error.cause instanceof Crash)) throw error;
          }
          break;
        case "pull":
          await pull();
          break;
      }
    }
    for (let round = 0; ; round++) {
      expect(round).toBeLessThan(20);
      const r = await push(target, mirror.outbox, options);
      if (r.status === "paused") {
        await mirror.outbox.resolve(r.conflict?.id as string, round % 2 ? "remote" : "local");
        continue;
      }
      await pull();
      if ((await mirror.outbox.pending(pair)).length === 0) break;
    }
    await pull();
    const members = await client.members(collection, false);
    const rows = mirror.rows();
    expect(rows.map((r) => r.sourcekey).sort()).toEqual([...members.keys()].sort());
    for (const r of rows) {
      const body = members.get(r.sourcekey)?.body ?? "";
      expect(sameText((r.data as { raw: string }).raw, body), r.sourcekey).toBe(true);
    }
    const uids = [...members.values()].map((m) => uidOf(m.body));
    expect(new Set(uids).size).toBe(uids.length);
  } finally {
    await account.close();
    mirror.close();
    db.close();
    await client.send("DELETE", collection);
  }
}
