import { fc } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { davWriteTarget } from "../../adapters/dav/dav-push.js";
import { createDavAccount } from "../../adapters/dav/index.js";
import { ConflictError } from "../../src/core/errors.js";
import { basicAuth, DavTestClient, eventBody } from "../dav/dav-harness.js";
import { serverAvailability } from "../servers/process.js";
import { type RadicaleServer, startRadicale } from "../servers/radicale.js";
import { startXandikos, type XandikosServer } from "../servers/xandikos.js";
import { type DavTwoWayServer, davOps, davTwoWayHistory } from "./dav-two-way.js";

const RUNS = process.env.CI ? 50 : Number(process.env.DAV_TWO_WAY_RUNS ?? 15);
const policy = fc.constantFrom("client-wins" as const, "server-wins" as const, "ask" as const);

const radicale = serverAvailability("radicale", ["radicale"]);
describe.skipIf(radicale.skip)("two-way against Radicale", () => {
  let server: RadicaleServer;
  let info: DavTwoWayServer;
  beforeAll(async () => {
    server = await startRadicale();
    info = {
      url: `${server.url}/`,
      user: server.user,
      password: server.password,
      calendarHome: `/${server.user}/`,
    };
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("writes conditionally: If-None-Match on create, If-Match on update and delete", async () => {
    const client = new DavTestClient(info.url, basicAuth(info.user, info.password));
    await client.makeCalendar("/alice/cond/");
    const account = createDavAccount({
      url: info.url,
      username: info.user,
      password: info.password,
    });
    const target = davWriteTarget(account, "/alice/cond/");
    const ctx = { signal: new AbortController().signal };
    const href = target.keyFor("x1");
    expect(href).toBe("/alice/cond/x1.ics");
    const entry = {
      kind: "create" as const,
      seq: 1,
      at: 0,
      localId: "x1",
      sourcekey: href,
      data: { raw: eventBody("x1", "a") },
    };
    const made = await target.create(entry, ctx);
    expect(made.changeKey).toMatch(/^"/);
    // A replayed create meets its own member: 412, and `applied` recognises it.
    await expect(target.create(entry, ctx)).rejects.toBeInstanceOf(ConflictError);
    const remote = await target.fetch(href, ctx);
    expect(remote && target.applied(entry, remote)).toBe(true);
    await client.put(href, eventBody("x1", "theirs"));
    await expect(
      target.update(
        {
          ...entry,
          kind: "update",
          changeKey: made.changeKey,
          data: { raw: eventBody("x1", "b") },
        },
        ctx,
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(
      target.delete(
        {
          kind: "delete",
          seq: 2,
          at: 0,
          localId: "x1",
          sourcekey: href,
          changeKey: made.changeKey,
        },
        ctx,
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    await account.close();
  });

  it(`histories of local and remote edits with crashes converge (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(policy, davOps, (p, ops) => davTwoWayHistory(info, p, ops)),
      { numRuns: RUNS },
    );
  });
});

const xandikos = serverAvailability("xandikos", ["xandikos"]);
describe.skipIf(xandikos.skip)("two-way against Xandikos", () => {
  let server: XandikosServer;
  beforeAll(async () => {
    server = await startXandikos();
  });
  afterAll(async () => {
    await server?.stop();
  });
  it("a pushed create deleted remotely before any pull saw it leaves the mirror (settlePushed)", async () => {
    // Xandikos reports nothing for a member created and deleted between two sync tokens.
    const info = { url: `${server.url}/`, calendarHome: "/user/calendars/" };
    await davTwoWayHistory(info, "client-wins", [
      { t: "lcreate", v: "a" },
      { t: "push", crashAt: 0, after: false },
      { t: "rdelete", pick: 0 },
      { t: "lcreate", v: "a" },
    ]);
  });

  it(`histories of local and remote edits with crashes converge (${RUNS} runs)`, async () => {
    const info = { url: `${server.url}/`, calendarHome: "/user/calendars/" };
    await fc.assert(
      fc.asyncProperty(policy, davOps, (p, ops) => davTwoWayHistory(info, p, ops)),
      { numRuns: RUNS },
    );
  });
});
