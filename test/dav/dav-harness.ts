/**
 * The conformance harness for the dav adapter: one throwaway server per test file, a fresh
 * calendar and address book per history. Mutations and `truth()` go through plain HTTP (fetch),
 * never through the adapter.
 */
import fc from "fast-check";
import { XMLParser } from "fast-xml-parser";
import { createDavAccount, type DavAccount, type DavOptions } from "../../adapters/dav/index.js";
import type { SyncObject } from "../../src/core/types.js";
import type {
  ConformanceHarness,
  ConformanceScope,
  MirrorEntry,
} from "../../src/testing/harness.js";
import { type FaultProxy, INVALID_TOKEN, SERVER_ERROR } from "./dav-fault-proxy.js";

export type DavOp =
  | { t: "put"; book: boolean; n: number; v: number }
  | { t: "del"; book: boolean; n: number };

export interface DavServerInfo {
  name: string;
  /** `http://127.0.0.1:PORT/` */
  url: string;
  user?: string;
  password?: string;
  calendarHome: string;
  addressbookHome: string;
  /** Makes every token issued so far invalid for these collections (server-specific). */
  expire?(ctx: DavTestClient, collections: string[]): Promise<void>;
  /** Extra account options (e.g. `syncLimit` for Cyrus). */
  account?: Partial<DavOptions>;
}

/** Plain-HTTP access to the server, for mutations and truth. */
export class DavTestClient {
  constructor(
    readonly base: string,
    private readonly auth?: string,
  ) {}

  async send(
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string; etag: string | null }> {
    const h: Record<string, string> = { ...headers };
    if (this.auth) h.authorization = this.auth;
    if (body !== undefined && !h["content-type"]) h["content-type"] = "application/xml";
    const res = await fetch(new URL(path, this.base), { method, body, headers: h });
    const text = await res.text();
    return { status: res.status, text, etag: res.headers.get("etag") };
  }

  async must(method: string, path: string, body?: string, headers?: Record<string, string>) {
    const r = await this.send(method, path, body, headers);
    if (r.status >= 300)
      throw new Error(`${method} ${path}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    return r;
  }

  async makeCalendar(href: string): Promise<void> {
    await this.must("MKCALENDAR", href);
  }

  async makeAddressBook(href: string, displayname = "Book"): Promise<void> {
    await this.must(
      "MKCOL",
      href,
      '<?xml version="1.0"?><d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav">' +
        "<d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype>" +
        `<d:displayname>${displayname}</d:displayname></d:prop></d:set></d:mkcol>`,
    );
  }

  async put(href: string, body: string): Promise<void> {
    const type = body.includes("BEGIN:VCARD") ? "text/vcard" : "text/calendar";
    await this.must("PUT", href, body, { "content-type": type });
  }

  /**
   * Members of a collection: href → body and etag, in one `calendar-query` / `addressbook-query`
   * (RFC 4791 §7.8, RFC 6352 §8.6) that matches everything: a request the adapter never sends.
   */
  async members(
    collection: string,
    book: boolean,
  ): Promise<Map<string, { body: string; etag: string }>> {
    const body = book
      ? '<?xml version="1.0"?><cr:addressbook-query xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav">' +
        "<d:prop><d:getetag/><cr:address-data/></d:prop><cr:filter/></cr:addressbook-query>"
      : '<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">' +
        '<d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"/>' +
        "</c:filter></c:calendar-query>";
    const r = await this.must("REPORT", collection, body, { depth: "1" });
    const out = new Map<string, { body: string; etag: string }>();
    const list = (v: unknown): Record<string, unknown>[] =>
      v === undefined ? [] : ((Array.isArray(v) ? v : [v]) as Record<string, unknown>[]);
    const text = (v: unknown): string =>
      typeof v === "string"
        ? v
        : typeof v === "object" && v
          ? String((v as { "#text"?: unknown })["#text"] ?? "")
          : "";
    const ms = xml.parse(r.text).multistatus as Record<string, unknown> | undefined;
    for (const resp of list(ms?.response)) {
      const href = new URL(text(resp.href).trim(), this.base).pathname;
      if (href.endsWith("/")) {
        // Xandikos answers a report the collection doesn't support with a 207 naming it.
        if (resp.status !== undefined)
          throw new Error(`REPORT ${collection}: ${text(resp.status)}`);
        continue;
      }
      for (const ps of list(resp.propstat)) {
        if (!/ 200 /.test(text(ps.status))) continue;
        const prop = (ps.prop ?? {}) as Record<string, unknown>;
        const data = prop[book ? "address-data" : "calendar-data"];
        if (data === undefined) continue;
        out.set(href, { body: text(data), etag: text(prop.getetag).trim() });
      }
    }
    return out;
  }
}

const xml = new XMLParser({
  removeNSPrefix: true,
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
});

export function basicAuth(user?: string, password?: string): string | undefined {
  return user ? `Basic ${Buffer.from(`${user}:${password ?? ""}`).toString("base64")}` : undefined;
}

export function eventBody(uid: string, summary: string): string {
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//deltasync//test//EN",
    "BEGIN:VEVENT",
    `UID:${uid}`,
    "DTSTAMP:20240101T000000Z",
    "DTSTART:20240102T100000Z",
    "DTEND:20240102T110000Z",
    `SUMMARY:${summary}`,
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

export function cardBody(uid: string, fn: string): string {
  return [
    "BEGIN:VCARD",
    "VERSION:3.0",
    `UID:${uid}`,
    `FN:${fn}`,
    `N:${fn};;;;`,
    "END:VCARD",
    "",
  ].join("\r\n");
}

const line = (body: string, name: string) =>
  new RegExp(`^${name}(?:;[^:\\r\\n]*)?:(.*?)\\r?$`, "m").exec(body)?.[1];

/** The comparable form of one item: what the adapter exported must match what GET returns. */
function projectBody(body: string, etag: string | undefined) {
  return { uid: line(body, "UID"), text: line(body, "SUMMARY") ?? line(body, "FN"), etag };
}

let serial = 0;

export function davHarness(
  server: DavServerInfo,
  options: Partial<DavOptions> = {},
  proxy?: FaultProxy,
): {
  harness: ConformanceHarness<DavOp>;
  client: DavTestClient;
  account: DavAccount;
} {
  // Mutations and truth go straight to the server; the adapter through the fault proxy if any.
  const client = new DavTestClient(server.url, basicAuth(server.user, server.password));
  const account = createDavAccount({
    url: proxy?.url ?? server.url,
    username: server.user,
    password: server.password,
    retry: { retries: 1, minDelayMs: 10, maxDelayMs: 50 },
    ...server.account,
    ...options,
  });
  const mutation: fc.Arbitrary<DavOp> = fc.oneof(
    {
      arbitrary: fc.record({
        t: fc.constant("put" as const),
        book: fc.boolean(),
        n: fc.nat(3),
        // Three bodies per member: updates often put back one the mirror already saw.
        v: fc.nat(2),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({ t: fc.constant("del" as const), book: fc.boolean(), n: fc.nat(3) }),
      weight: 1,
    },
  );
  const harness: ConformanceHarness<DavOp> = {
    name: server.name,
    mutation,
    async setup() {
      const id = `h${process.pid}x${Date.now().toString(36)}x${serial++}`;
      const cal = `${server.calendarHome}${id}c/`;
      const book = `${server.addressbookHome}${id}b/`;
      const foreign: string[] = [];
      await client.makeCalendar(cal);
      await client.makeAddressBook(book);
      // A member no op touches: no state is ever taken of an empty collection, whose token
      // Xandikos (the git empty tree) accepts forever, so expiry could not be shown there.
      await client.put(`${cal}anchor.ics`, eventBody(`${id}-anchor`, "anchor"));
      await client.put(`${book}anchor.vcf`, cardBody(`${id}-anchor`, "anchor"));
      const scope = (href: string, label: string): ConformanceScope => ({
        name: `${label} ${href}`,
        syncable: account.collection(href),
        // A DAV syncable keeps no pages; a new one is what a fresh process builds.
        reopen: () => account.collection(href),
        // This scope's name with a cursor made on another collection of the same server.
        async foreignState() {
          const other = `${href.slice(0, -2)}x${href.slice(-2)}`;
          if (href.endsWith("b/")) await client.makeAddressBook(other);
          else await client.makeCalendar(other);
          foreign.push(other);
          await putMarkers(client, [other]);
          const theirs = await account.collection(other).sync({});
          return rewriteState(theirs, (env) => {
            env.s = account.collection(href).scope;
          });
        },
        // A complete state whose token the server never issued (a ctag cursor is a listing: no head).
        aheadState:
          options.mode === "ctag"
            ? undefined
            : async () => {
                const ours = await account.collection(href).sync({});
                return rewriteState(ours, (env) => {
                  const c = env.c as { t: string };
                  c.t = foreignToken(c.t);
                });
              },
        project: (obj: SyncObject) => {
          const data = obj.data as { uid?: string; summary?: string; fn?: string };
          return { uid: data.uid, text: data.summary ?? data.fn, etag: obj.changeKey };
        },
        async truth() {
          const out = new Map<string, MirrorEntry>();
          for (const [href2, m] of await client.members(href, href === book)) {
            out.set(href2, {
              type: "item",
              parentKey: href,
              data: projectBody(m.body, m.etag || undefined),
            });
          }
          return out;
        },
      });
      return {
        scopes: [scope(cal, "calendar"), scope(book, "address book")],
        async apply(op) {
          const href = op.book ? `${book}c${op.n}.vcf` : `${cal}e${op.n}.ics`;
          if (op.t === "del") {
            const r = await client.send("DELETE", href);
            if (r.status >= 300 && r.status !== 404) throw new Error(`DELETE ${href}: ${r.status}`);
            return;
          }
          const uid = `${id}-${op.book ? "c" : "e"}${op.n}`;
          await client.put(href, op.book ? cardBody(uid, `v${op.v}`) : eventBody(uid, `v${op.v}`));
        },
        expireStates: server.expire
          ? () => server.expire?.(client, [cal, book]) ?? Promise.resolve()
          : undefined,
        injectFault: proxy
          ? (kind: "invalid" | "transient") => {
              // The adapter's next request only: the RFC 6578 refusal, or a bare 500.
              proxy.fault = () => {
                proxy.fault = undefined;
                return kind === "invalid" ? INVALID_TOKEN : SERVER_ERROR;
              };
            }
          : undefined,
        async teardown() {
          if (proxy) proxy.fault = undefined;
          for (const href of [cal, book, ...foreign]) await client.send("DELETE", href);
        },
      };
    },
  };
  return { harness, client, account };
}

/** Puts a uniquely named marker item into each collection (changes every collection's token). */
export async function putMarkers(client: DavTestClient, collections: string[]): Promise<string[]> {
  const hrefs: string[] = [];
  for (const c of collections) {
    const book = c.endsWith("b/");
    const name = `m${Date.now().toString(36)}${serial++}`;
    const href = `${c}${name}.${book ? "vcf" : "ics"}`;
    await client.put(href, book ? cardBody(name, "marker") : eventBody(name, "marker"));
    hrefs.push(href);
  }
  return hrefs;
}

/** Expiry by re-creation: the collection is deleted and made again, marker first, then its items. */
export async function recreate(client: DavTestClient, collections: string[]): Promise<void> {
  for (const c of collections) {
    const members = await client.members(c, c.endsWith("b/"));
    await client.must("DELETE", c);
    if (c.endsWith("b/")) await client.makeAddressBook(c);
    else await client.makeCalendar(c);
    // The marker goes in first, so no listing the new collection passes through equals an old one.
    await putMarkers(client, [c]);
    for (const [href, m] of members) await client.put(href, m.body);
  }
}

/** Decodes a `ds1.` state, lets `edit` change its JSON, and encodes it again (tampering tests). */
export function rewriteState(state: string, edit: (env: Record<string, unknown>) => void): string {
  const env = JSON.parse(Buffer.from(state.slice(4), "base64url").toString("utf8"));
  edit(env);
  return `ds1.${Buffer.from(JSON.stringify(env), "utf8").toString("base64url")}`;
}

/** A token the server never issued: Cyrus's modseq moved ahead, any other token's last char changed. */
export function foreignToken(token: string): string {
  const cyrus = /^(data:,\d+-)(\d+)$/.exec(token);
  if (cyrus) return `${cyrus[1]}${Number(cyrus[2]) + 1000}`;
  const last = token.slice(-1);
  return token.slice(0, -1) + (last === "0" ? "1" : "0");
}

/** True for a checkpoint that marks no objects for verification (a page boundary). */
export function marksNothing(state: string): boolean {
  return !("d" in (JSON.parse(Buffer.from(state.slice(4), "base64url").toString()) as object));
}
