/**
 * The dav adapter against a scripted in-process HTTP server: hostile XML, malformed bodies,
 * truncation, every invalid-token shape, and the bounded handling of a 5xx on a saved token.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createDavAccount } from "../../adapters/dav/index.js";
import {
  AuthError,
  NotFoundError,
  ProtocolError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import { marksNothing } from "./dav-harness.js";

type Handler = (
  req: IncomingMessage,
  body: string,
) => { status: number; body?: string } | undefined;

let server: Server;
let base = "";
let handler: Handler;
const log: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      log.push(`${req.method} ${req.url}`);
      const out = handler(req, body) ?? { status: 404, body: "" };
      res.writeHead(out.status, { "content-type": "application/xml; charset=utf-8" });
      res.end(out.body ?? "");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  log.length = 0;
});

const COL = "/cal/work/";
const propfindCollection = (token: string) =>
  `<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>${COL}</d:href><d:propstat><d:prop><d:resourcetype><d:collection/><c:calendar/></d:resourcetype><d:sync-token>${token}</d:sync-token><d:supported-report-set><d:supported-report><d:report><d:sync-collection/></d:report></d:supported-report></d:supported-report-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`;

const event = (uid: string) =>
  `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:${uid}\r\nDTSTART:20240102T100000Z\r\nSUMMARY:S &amp; ${uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`;

const member = (href: string, etag: string, data?: string) =>
  `<d:response><d:href>${href}</d:href><d:propstat><d:prop><d:getetag>"${etag}"</d:getetag>${
    data === undefined ? "" : `<c:calendar-data>${data}</c:calendar-data>`
  }</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`;

const multistatus = (inner: string, token?: string) =>
  `<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">${inner}${
    token ? `<d:sync-token>${token}</d:sync-token>` : ""
  }</d:multistatus>`;

function account() {
  return createDavAccount({
    url: `${base}/`,
    username: "u",
    password: "p",
    retry: { retries: 1, minDelayMs: 1, maxDelayMs: 5 },
  });
}

function collect() {
  const updates: SyncObject[] = [];
  const deletes: string[] = [];
  return {
    updates,
    deletes,
    importer: {
      update: (o: SyncObject) => void updates.push(o),
      delete: (o: { sourcekey: string }) => void deletes.push(o.sourcekey),
    },
  };
}

/** A server answering PROPFIND on the collection and sync-collection from `reports`. */
function scripted(reports: (body: string) => { status: number; body?: string }, token = "t0") {
  handler = (req, body) => {
    if (req.method === "PROPFIND" && req.url === COL)
      return { status: 207, body: propfindCollection(token) };
    if (req.method === "REPORT" && body.includes("sync-collection")) return reports(body);
    return undefined;
  };
}

describe("dav adapter against hostile or broken servers", () => {
  it("exports members, deletes 404s, ignores the collection itself and decodes entities", async () => {
    scripted(() => ({
      status: 207,
      body: multistatus(
        member(COL, "self") +
          member(`${COL}a.ics`, "1", event("a")) +
          `<d:response><d:href>${COL}gone.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>`,
        "t1",
      ),
    }));
    const acc = account();
    const { updates, deletes, importer } = collect();
    await acc.collection(COL).sync(importer);
    expect(updates.map((u) => u.sourcekey)).toEqual([`${COL}a.ics`]);
    const data = updates[0]?.data as { uid?: string; summary?: string; raw: string };
    expect(data.uid).toBe("a");
    expect(data.summary).toBe("S & a");
    expect(updates[0]?.changeKey).toBe('"1"');
    expect(updates[0]?.parentKey).toBe(COL);
    expect(deletes).toEqual([`${COL}gone.ics`]);
    await acc.close();
  });

  it("refuses a body with a DOCTYPE (XXE) and names the URL", async () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><d:multistatus xmlns:d="DAV:"><d:response><d:href>&e;</d:href></d:response></d:multistatus>`;
    scripted(() => ({ status: 207, body: xxe }));
    const acc = account();
    const error = await acc
      .collection(COL)
      .sync({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).message).toContain(`${base}${COL}`);
    expect((error as ProtocolError).message).toMatch(/DOCTYPE/);
    await acc.close();
  });

  it("refuses a billion-laughs body without expanding it", async () => {
    const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><d:multistatus xmlns:d="DAV:"><d:sync-token>&lol2;</d:sync-token></d:multistatus>`;
    scripted(() => ({ status: 207, body: lol }));
    const acc = account();
    await expect(acc.collection(COL).sync({})).rejects.toBeInstanceOf(ProtocolError);
    await acc.close();
  });

  it("leaves undeclared entities unexpanded (no entity processing at all)", async () => {
    scripted(() => ({
      status: 207,
      body: multistatus(
        member(`${COL}a.ics`, "1", event("a").replace("S &amp;", "S &custom;")),
        "t1",
      ),
    }));
    const acc = account();
    const { updates, importer } = collect();
    await acc.collection(COL).sync(importer);
    expect((updates[0]?.data as { raw: string } | undefined)?.raw).toContain("&custom;");
    await acc.close();
  });

  it("turns a malformed multistatus into a ProtocolError naming the URL, and keeps the state", async () => {
    scripted(() => ({ status: 207, body: "<d:multistatus xmlns:d='DAV:'><d:response>" }));
    const acc = account();
    const error = await acc
      .collection(COL)
      .sync({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).endpoint).toBe(`REPORT ${base}${COL}`);
    scripted(() => ({ status: 207, body: "<html>not xml at all" }));
    await expect(acc.collection(COL).sync({})).rejects.toBeInstanceOf(ProtocolError);
    scripted(() => ({ status: 207, body: multistatus(member(`${COL}a.ics`, "1", event("a"))) }));
    await expect(acc.collection(COL).sync({})).rejects.toThrow(/no <sync-token>/);
    await acc.close();
  });

  it("pages through 507 truncation with the partial token, and detects a token that never moves", async () => {
    const pages: Record<string, string> = {
      "": multistatus(
        member(`${COL}a.ics`, "1", event("a")) +
          `<d:response><d:href>${COL}</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>`,
        "p1",
      ),
      p1: multistatus(member(`${COL}b.ics`, "1", event("b")), "p2"),
    };
    scripted((body) => {
      const token = /<d:sync-token>([^<]*)<\/d:sync-token>/.exec(body)?.[1] ?? "";
      return { status: 207, body: pages[token] ?? multistatus("", "p2") };
    });
    const acc = account();
    const { updates, importer } = collect();
    const checkpoints: string[] = [];
    const out = await acc.collection(COL).exportChanges(importer, null, {
      // Page-boundary checkpoints only: those that mark a page (reportsByContent) carry `d`.
      onCheckpoint: (s) => void (marksNothing(s) && checkpoints.push(s)),
    });
    expect(updates.map((u) => u.sourcekey)).toEqual([`${COL}a.ics`, `${COL}b.ics`]);
    expect(out.pages).toBe(2);
    expect(checkpoints).toHaveLength(1);

    // A server that truncates forever with the same token must not loop.
    scripted(() => ({
      status: 207,
      body: multistatus(
        `<d:response><d:href>${COL}</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>`,
        "stuck",
      ),
    }));
    await expect(acc.collection(COL).sync({})).rejects.toThrow(/never end/);
    await acc.close();
  });

  it.each([403, 409, 412, 418])(
    "maps HTTP %i naming valid-sync-token to StateInvalidError",
    async (status) => {
      scripted((body) =>
        body.includes("<d:sync-token/>")
          ? { status: 207, body: multistatus("", "t1") }
          : {
              status,
              body: '<?xml version="1.0"?><d:error xmlns:d="DAV:"><d:valid-sync-token/></d:error>',
            },
      );
      const acc = account();
      const state = await acc.collection(COL).sync({});
      await expect(acc.collection(COL).sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
      await acc.close();
    },
  );

  it("turns a 500 on a saved token into StateInvalidError only when the current token is answered", async () => {
    scripted(
      (body) =>
        body.includes("<d:sync-token/>")
          ? { status: 207, body: multistatus("", "old") }
          : body.includes("<d:sync-token>newer</d:sync-token>")
            ? { status: 207, body: multistatus("", "newer") }
            : { status: 500, body: "500 Internal Server Error" },
      "newer",
    );
    const acc = account();
    const state = await acc.collection(COL).sync({});
    log.length = 0;
    await expect(acc.collection(COL).sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
    // Ours (and its retry), one PROPFIND, the current token once, ours again (and its retry).
    expect(log.filter((l) => l.startsWith("REPORT"))).toHaveLength(5);
    expect(log.filter((l) => l.startsWith("PROPFIND"))).toHaveLength(1);
    await acc.close();
  });

  it("keeps a 500 transient while changes are pending (a newer current token) and REPORT fails for every token", async () => {
    scripted(
      (body) =>
        body.includes("<d:sync-token/>")
          ? { status: 207, body: multistatus("", "old") }
          : { status: 500, body: "500 Internal Server Error" },
      "newer",
    );
    const acc = account();
    const state = await acc.collection(COL).sync({});
    await expect(acc.collection(COL).sync({}, state)).rejects.toBeInstanceOf(TransientError);
    await acc.close();
  });

  it("goes on when the 500s end while the adapter is still looking", async () => {
    let failures = 2;
    scripted(
      (body) =>
        body.includes("<d:sync-token/>")
          ? { status: 207, body: multistatus("", "old") }
          : failures-- > 0
            ? { status: 500, body: "" }
            : { status: 207, body: multistatus(member(`${COL}a.ics`, "1", event("a")), "newer") },
      "newer",
    );
    const acc = account();
    const state = await acc.collection(COL).sync({});
    const { updates, importer } = collect();
    await acc.collection(COL).sync(importer, state);
    expect(updates.map((u) => u.sourcekey)).toEqual([`${COL}a.ics`]);
    await acc.close();
  });

  it("keeps a 500 transient when the probe shows the saved token is current, or fails too", async () => {
    scripted(
      (body) =>
        body.includes("<d:sync-token/>")
          ? { status: 207, body: multistatus("", "same") }
          : { status: 500, body: "" },
      "same",
    );
    const acc = account();
    const state = await acc.collection(COL).sync({});
    await expect(acc.collection(COL).sync({}, state)).rejects.toBeInstanceOf(TransientError);
    handler = () => ({ status: 500, body: "" });
    await expect(acc.collection(COL).sync({}, state)).rejects.toBeInstanceOf(TransientError);
    // Without a token there is nothing to reset: transient as well.
    await expect(acc.collection(COL).sync({})).rejects.toBeInstanceOf(TransientError);
    await acc.close();
  });

  it("maps an <unauthenticated/> current-user-principal to AuthError", async () => {
    handler = (req) =>
      req.method === "PROPFIND"
        ? {
            status: 207,
            body: `<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/</d:href><d:propstat><d:prop><d:current-user-principal><d:unauthenticated/></d:current-user-principal></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`,
          }
        : undefined;
    const acc = account();
    await expect(acc.discover()).rejects.toBeInstanceOf(AuthError);
    await expect(acc.calendar("work").sync({})).rejects.toBeInstanceOf(AuthError);
    await acc.close();
  });

  it("fetches members the report gave without a body through multiget, and fails on omissions", async () => {
    handler = (req, body) => {
      if (req.method === "PROPFIND") return { status: 207, body: propfindCollection("t") };
      if (body.includes("sync-collection")) {
        return {
          status: 207,
          body: multistatus(member(`${COL}a.ics`, "1") + member(`${COL}b.ics`, "1"), "t1"),
        };
      }
      if (body.includes("calendar-multiget")) {
        return {
          status: 207,
          body: multistatus(
            member(`${COL}a.ics`, "2", `<![CDATA[${event("a").replace("&amp;", "&")}]]>`) +
              `<d:response><d:href>${COL}b.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>`,
          ),
        };
      }
      return undefined;
    };
    const acc = account();
    const { updates, deletes, importer } = collect();
    await acc.collection(COL).sync(importer);
    expect(updates.map((u) => [u.sourcekey, u.changeKey])).toEqual([[`${COL}a.ics`, '"2"']]);
    expect((updates[0]?.data as { summary?: string } | undefined)?.summary).toBe("S & a");
    expect(deletes).toEqual([`${COL}b.ics`]);
    expect(log.filter((l) => l.startsWith("REPORT"))).toHaveLength(2);

    handler = (req, body) =>
      req.method === "PROPFIND"
        ? { status: 207, body: propfindCollection("t") }
        : body.includes("sync-collection")
          ? { status: 207, body: multistatus(member(`${COL}a.ics`, "1"), "t1") }
          : { status: 207, body: multistatus("") };
    await expect(acc.collection(COL).sync({})).rejects.toThrow(/multiget answered nothing/);
    await acc.close();
  });

  it("falls back to getctag + etag diff when the collection has no sync-collection", async () => {
    let ctag = "c1";
    let members: Record<string, string> = { a: "1", b: "1" };
    handler = (req, body) => {
      if (req.method === "PROPFIND" && req.headers.depth === "0") {
        return {
          status: 207,
          body: `<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"><d:response><d:href>${COL}</d:href><d:propstat><d:prop><d:resourcetype><d:collection/><c:calendar/></d:resourcetype><cs:getctag>${ctag}</cs:getctag><d:supported-report-set><d:supported-report><d:report><c:calendar-multiget/></d:report></d:supported-report></d:supported-report-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`,
        };
      }
      if (req.method === "PROPFIND") {
        const list = Object.entries(members)
          .map(([n, e]) => member(`${COL}${n}.ics`, e))
          .join("");
        return { status: 207, body: multistatus(member(COL, "self") + list) };
      }
      if (body.includes("calendar-multiget")) {
        const hrefs = [...body.matchAll(/<d:href>([^<]+)<\/d:href>/g)].map((m) => m[1] as string);
        const inner = hrefs
          .map((h) => {
            const name = h.slice(COL.length, -4);
            return member(h, members[name] ?? "?", event(name));
          })
          .join("");
        return { status: 207, body: multistatus(inner) };
      }
      if (body.includes("sync-collection")) throw new Error("sync-collection must not be used");
      return undefined;
    };
    const acc = account();
    const folder = acc.collection(COL);
    const { updates, deletes, importer } = collect();
    let state = await folder.sync(importer);
    expect(updates.map((u) => u.sourcekey).sort()).toEqual([`${COL}a.ics`, `${COL}b.ics`]);
    log.length = 0;
    state = await folder.sync(importer, state);
    expect(log).toEqual([`PROPFIND ${COL}`]); // unchanged ctag: one request
    updates.length = 0;
    ctag = "c2";
    members = { a: "2", c: "1" };
    state = await folder.sync(importer, state);
    expect(updates.map((u) => [u.sourcekey, u.changeKey]).sort()).toEqual([
      [`${COL}a.ics`, '"2"'],
      [`${COL}c.ics`, '"1"'],
    ]);
    expect(deletes).toEqual([`${COL}b.ics`]);
    await acc.close();
  });

  it("reports a missing collection as NotFoundError", async () => {
    handler = () => ({ status: 404, body: "" });
    const acc = account();
    await expect(acc.collection("/nope/").sync({})).rejects.toBeInstanceOf(NotFoundError);
    await acc.close();
  });
});

describe("dav transport against a server that closes after a large body (Radicale is HTTP/1.0)", () => {
  it("reads a multi-megabyte HTTP/1.0 multistatus that ends with FIN", async () => {
    const { createServer: createNetServer } = await import("node:net");
    let inner = "";
    for (let i = 0; i < 4000; i++) inner += member(`${COL}e${i}.ics`, String(i), event(`e${i}`));
    const xml = Buffer.from(multistatus(inner, "big"));
    const raw = createNetServer((sock) => {
      let got = "";
      sock.on("data", (d) => {
        got += d.toString();
        if (!got.includes("\r\n\r\n")) return;
        const head = got.startsWith("PROPFIND") ? Buffer.from(propfindCollection("t")) : xml;
        sock.write(
          `HTTP/1.0 207 Multi-Status\r\nContent-Type: application/xml\r\nContent-Length: ${head.length}\r\nConnection: close\r\n\r\n`,
        );
        sock.write(head);
        sock.end();
        got = "";
      });
    });
    await new Promise<void>((r) => raw.listen(0, "127.0.0.1", r));
    const port = (raw.address() as AddressInfo).port;
    const acc = createDavAccount({ url: `http://127.0.0.1:${port}/`, parse: false });
    let n = 0;
    const pending = acc.collection(COL).sync({ update: () => void n++ });
    await pending;
    expect(n).toBe(4000);
    await acc.close();
    await new Promise<void>((r) => raw.close(() => r()));
  });
});
