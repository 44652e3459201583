/**
 * Cases every real server runs besides the conformance kit: discovery, hierarchy, conditional
 * writes, composite scopes.
 */
import { expect, it } from "vitest";
import {
  ConflictError,
  StateError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import { SERVER_ERROR, startFaultProxy } from "./dav-fault-proxy.js";
import {
  type DavServerInfo,
  davHarness,
  eventBody,
  foreignToken,
  rewriteState,
} from "./dav-harness.js";

export function davServerTests(getInfo: () => DavServerInfo, _opts: { invalidStatus: string }) {
  it("discovers the principal, both home sets and the collections", async () => {
    const info = getInfo();
    const { account, client } = davHarness(info);
    const cal = `${info.calendarHome}disc${Date.now()}/`;
    await client.makeCalendar(cal);
    const found = await account.discover();
    expect(found.calendarHomes).toContain(info.calendarHome);
    expect(found.addressbookHomes).toContain(info.addressbookHome);
    const c = found.collections.find((x) => x.href === cal);
    expect(c?.kind).toBe("calendar");
    expect(c?.reports).toContain("sync-collection");
    expect(c?.ctag ?? c?.syncToken).toBeTruthy();
    await client.send("DELETE", cal);
    await account.close();
  });

  it("reports calendars added, renamed and removed in the hierarchy", async () => {
    const info = getInfo();
    const { account, client } = davHarness(info);
    const seen = new Map<string, SyncObject>();
    const deleted: string[] = [];
    const importer = {
      update: (o: SyncObject) => void seen.set(o.sourcekey, o),
      delete: (o: { sourcekey: string }) => void deleted.push(o.sourcekey),
    };
    const hierarchy = account.hierarchy();
    let state = await hierarchy.sync(importer);
    const cal = `${info.calendarHome}hier${Date.now()}/`;
    await client.makeCalendar(cal);
    seen.clear();
    state = await hierarchy.sync(importer, state);
    expect([...seen.keys()]).toEqual([cal]);
    expect(seen.get(cal)?.type).toBe("folder");

    await client.must(
      "PROPPATCH",
      cal,
      '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>' +
        "<d:displayname>Renamed</d:displayname></d:prop></d:set></d:propertyupdate>",
    );
    seen.clear();
    state = await hierarchy.sync(importer, state);
    expect((seen.get(cal)?.data as { displayname?: string } | undefined)?.displayname).toBe(
      "Renamed",
    );

    await client.must("PUT", `${cal}x.ics`, eventBody("x", "not a hierarchy change"), {
      "content-type": "text/calendar",
    });
    seen.clear();
    state = await hierarchy.sync(importer, state);
    expect(seen.size).toBe(0);

    await client.send("DELETE", cal);
    seen.clear();
    state = await hierarchy.sync(importer, state);
    expect(deleted).toEqual([cal]);
    expect(seen.size).toBe(0);
    await account.close();
  });

  it("writes with If-Match / If-None-Match and maps 412 to ConflictError", async () => {
    const info = getInfo();
    const { account, client } = davHarness(info);
    const cal = `${info.calendarHome}w${Date.now()}/`;
    await client.makeCalendar(cal);
    const href = `${cal}w1.ics`;
    await account.put({ href, raw: eventBody("w1", "first") });
    await expect(account.put({ href, raw: eventBody("w1", "again") })).rejects.toBeInstanceOf(
      ConflictError,
    );
    const items = new Map<string, SyncObject>();
    const folder = account.collection(cal);
    const state = await folder.sync({ update: (o) => void items.set(o.sourcekey, o) });
    const etag = items.get(href)?.changeKey;
    expect(etag).toBeTruthy();
    await account.put({ href, raw: eventBody("w1", "second") }, { ifMatch: etag });
    // The old etag no longer matches: both writes lose the race.
    await expect(
      account.put({ href, raw: eventBody("w1", "third") }, { ifMatch: etag }),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(account.remove(href, { ifMatch: etag })).rejects.toBeInstanceOf(ConflictError);
    items.clear();
    await folder.sync({ update: (o) => void items.set(o.sourcekey, o) }, state);
    const current = items.get(href);
    expect((current?.data as { summary?: string } | undefined)?.summary).toBe("second");
    await account.remove(href, { ifMatch: current?.changeKey });
    expect((await client.send("GET", href)).status).toBe(404);
    await client.send("DELETE", cal);
    await account.close();
  });

  it("syncs every calendar through the composite calendars() scope", async () => {
    const info = getInfo();
    const { account, client } = davHarness(info);
    const a = `${info.calendarHome}ca${Date.now()}/`;
    const b = `${info.calendarHome}cb${Date.now()}/`;
    await client.makeCalendar(a);
    await client.makeCalendar(b);
    await client.put(`${a}1.ics`, eventBody("ca1", "A"));
    await client.put(`${b}1.ics`, eventBody("cb1", "B"));
    const keys = new Set<string>();
    const importer = {
      update: (o: SyncObject) => void keys.add(o.sourcekey),
      delete: (o: { sourcekey: string }) => void keys.delete(o.sourcekey),
    };
    const scope = account.calendars();
    let state = await scope.sync(importer);
    expect(keys).toContain(`${a}1.ics`);
    expect(keys).toContain(`${b}1.ics`);
    await client.send("DELETE", `${b}1.ics`);
    state = await scope.sync(importer, state);
    expect(keys).not.toContain(`${b}1.ics`);
    expect(keys).toContain(`${a}1.ics`);
    for (const c of [a, b]) await client.send("DELETE", c);
    await account.close();
  });

  it("refuses a token the server never issued (ahead of it) with StateInvalidError", async () => {
    const info = getInfo();
    const { account, client } = davHarness(info);
    const cal = `${info.calendarHome}never${Date.now()}/`;
    await client.makeCalendar(cal);
    await client.put(`${cal}a.ics`, eventBody(`${cal}a`, "A"));
    const state = await account.collection(cal).sync({});
    const forged = rewriteState(state, (env) => {
      const c = env.c as { t: string };
      c.t = foreignToken(c.t);
    });
    await expect(account.collection(cal).sync({}, forged)).rejects.toBeInstanceOf(
      StateInvalidError,
    );
    await client.send("DELETE", cal);
    await account.close();
  });

  it("refuses a state whose cursor names another collection than its scope (StateError)", async () => {
    const info = getInfo();
    const { account, client } = davHarness(info);
    const x = `${info.calendarHome}x${Date.now()}/`;
    const y = `${info.calendarHome}y${Date.now()}/`;
    for (const c of [x, y]) await client.makeCalendar(c);
    await client.put(`${y}a.ics`, eventBody(`${y}a`, "A"));
    const stateOfY = await account.collection(y).sync({});
    const forged = rewriteState(stateOfY, (env) => {
      env.s = account.collection(x).scope;
    });
    const imported: string[] = [];
    await expect(
      account.collection(x).sync({ update: (o) => void imported.push(o.sourcekey) }, forged),
    ).rejects.toBeInstanceOf(StateError);
    expect(imported).toEqual([]);
    // The same through names under the calendar home.
    const name = (href: string) => href.slice(info.calendarHome.length, -1);
    const byName = await account.calendar(name(y)).sync({});
    const forgedName = rewriteState(byName, (env) => {
      env.s = account.calendar(name(x)).scope;
    });
    await expect(account.calendar(name(x)).sync({}, forgedName)).rejects.toBeInstanceOf(StateError);
    for (const c of [x, y]) await client.send("DELETE", c);
    await account.close();
  });

  it("keeps a REPORT that answers 500 for a while transient although changes are pending", async () => {
    const info = getInfo();
    const proxy = await startFaultProxy(info.url);
    const { account, client } = davHarness({ ...info, url: proxy.url });
    const cal = `${info.calendarHome}f${Date.now()}/`;
    try {
      await client.makeCalendar(cal);
      await client.put(`${cal}a.ics`, eventBody(`${cal}a`, "A"));
      const keys = new Set<string>();
      const importer = { update: (o: SyncObject) => void keys.add(o.sourcekey) };
      let state = await account.collection(cal).sync(importer);
      // Pending changes: the collection's current token now differs from the saved one.
      await client.put(`${cal}b.ics`, eventBody(`${cal}b`, "B"));
      proxy.fault = (req) => (req.method === "REPORT" ? SERVER_ERROR : undefined);
      await expect(account.collection(cal).sync(importer, state)).rejects.toBeInstanceOf(
        TransientError,
      );
      // 500s that end while the adapter is still looking: the round just goes on.
      let failures = 2;
      proxy.fault = (req) => (req.method === "REPORT" && failures-- > 0 ? SERVER_ERROR : undefined);
      state = await account.collection(cal).sync(importer, state);
      expect(keys).toContain(`${cal}b.ics`);
      proxy.fault = undefined;
      await client.put(`${cal}c.ics`, eventBody(`${cal}c`, "C"));
      await account.collection(cal).sync(importer, state);
      expect(keys).toContain(`${cal}c.ics`);
    } finally {
      await client.send("DELETE", cal);
      await account.close();
      await proxy.close();
    }
  });
}
