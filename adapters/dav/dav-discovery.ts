/**
 * Discovery (RFC 5397, RFC 4791 §6.2.1, RFC 6352 §7.1.1, RFC 6764 §5): base URL →
 * `current-user-principal` → `calendar-home-set` / `addressbook-home-set` → collections.
 */
import { AuthError, ProtocolError } from "../../src/core/errors.js";
import {
  type DavResponse,
  parseMultistatus,
  propChildren,
  propHrefs,
  propText,
  supportedReports,
} from "./dav-multistatus.js";
import { type DavTransport, header } from "./dav-transport.js";
import { propfindBody } from "./dav-xml.js";

export type DavKind = "calendar" | "addressbook";

/** A calendar or address book. */
export interface DavCollection {
  /** Absolute path with a trailing slash, e.g. `/alice/work/`; the folder's sourcekey. */
  href: string;
  kind: DavKind;
  displayname?: string;
  description?: string;
  color?: string;
  /** `CS:getctag`, changes whenever a member does. */
  ctag?: string;
  /** `DAV:sync-token` as a live property (RFC 6578 §4). */
  syncToken?: string;
  /** Local names of the supported reports, e.g. `sync-collection`, `calendar-multiget`. */
  reports: string[];
}

export interface DavHomes {
  principal: string;
  calendarHomes: string[];
  addressbookHomes: string[];
}

const HOME_PROPS = [
  "d:current-user-principal",
  "d:resourcetype",
  "c:calendar-home-set",
  "cr:addressbook-home-set",
];

export const COLLECTION_PROPS = [
  "d:resourcetype",
  "d:displayname",
  "cs:getctag",
  "d:sync-token",
  "d:supported-report-set",
  "c:calendar-description",
  "cr:addressbook-description",
  "ic:calendar-color",
];

/** The path of an href (absolute URL or path) on the transport's origin. */
export function hrefPath(href: string, origin: string): string {
  // Most servers write absolute paths: skip the URL parser for them (thousands per report).
  if (SIMPLE_PATH.test(href) && !href.includes("/.")) return href;
  return new URL(href, origin).pathname;
}

const SIMPLE_PATH = /^\/(?!\/)[A-Za-z0-9_~!$&'()*+,;=:@%/.-]*$/;

/** A comparison key for hrefs: decoded path without a trailing slash. */
export function hrefKey(href: string, origin: string): string {
  let path = hrefPath(href, origin);
  if (path.includes("%")) {
    try {
      path = decodeURIComponent(path);
    } catch {
      // keep the encoded form
    }
  }
  return path.endsWith("/") ? path.slice(0, -1) : path;
}

/** Finds the principal and its home sets, trying RFC 6764 well-known URLs when needed. */
export async function discoverHomes(
  t: DavTransport,
  baseUrl: string,
  signal?: AbortSignal,
): Promise<DavHomes> {
  const base = hrefPath(baseUrl, t.origin);
  let found = await principalOf(t, base, signal);
  if (!found) {
    for (const wellKnown of ["/.well-known/caldav", "/.well-known/carddav"]) {
      found = await principalOf(t, wellKnown, signal).catch(() => undefined);
      if (found) break;
    }
  }
  if (!found) {
    throw new ProtocolError(
      `PROPFIND ${new URL(base, t.origin)}`,
      "no current-user-principal found",
    );
  }
  let { principal, calendarHomes, addressbookHomes } = found;
  if (calendarHomes.length === 0 && addressbookHomes.length === 0) {
    const ms = await t.multistatus({
      method: "PROPFIND",
      href: principal,
      depth: "0",
      body: propfindBody(HOME_PROPS),
      signal,
    });
    const r = ms.responses[0];
    if (r) {
      calendarHomes = propHrefs(r, "calendar-home-set").map((h) => hrefPath(h, t.origin));
      addressbookHomes = propHrefs(r, "addressbook-home-set").map((h) => hrefPath(h, t.origin));
    }
  }
  if (calendarHomes.length === 0 && addressbookHomes.length === 0) {
    throw new ProtocolError(
      `PROPFIND ${new URL(principal, t.origin)}`,
      "the principal has neither a calendar-home-set nor an addressbook-home-set",
    );
  }
  return { principal, calendarHomes, addressbookHomes };
}

async function principalOf(
  t: DavTransport,
  href: string,
  signal: AbortSignal | undefined,
  redirects = 0,
): Promise<DavHomes | undefined> {
  const reply = await t.send({
    method: "PROPFIND",
    href,
    depth: "0",
    body: propfindBody(HOME_PROPS),
    expect: [207, 301, 302, 303, 307, 308, 404, 405],
    signal,
  });
  if (reply.status >= 300 && reply.status < 400) {
    const location = header(reply, "location");
    if (!location || redirects >= 3) return undefined;
    // The transport refuses other origins, so credentials never follow a redirect off-host.
    return principalOf(t, location, signal, redirects + 1);
  }
  if (reply.status !== 207) return undefined;
  const r = parseMultistatus(reply.text, `PROPFIND ${reply.url}`).responses[0];
  if (!r) return undefined;
  // RFC 5397 §3: the server served the request anonymously (Cyrus does for PROPFIND /).
  if (propChildren(r, "current-user-principal").includes("unauthenticated")) {
    throw new AuthError(
      `PROPFIND ${reply.url}: the server treats the request as unauthenticated ` +
        "(current-user-principal is <unauthenticated/>): give credentials it accepts",
    );
  }
  const principal =
    propHrefs(r, "current-user-principal")[0] ??
    (propChildren(r, "resourcetype").includes("principal") ? r.href : undefined);
  if (!principal) return undefined;
  return {
    principal: hrefPath(principal, t.origin),
    calendarHomes: propHrefs(r, "calendar-home-set").map((h) => hrefPath(h, t.origin)),
    addressbookHomes: propHrefs(r, "addressbook-home-set").map((h) => hrefPath(h, t.origin)),
  };
}

/** Everything but getctag and sync-token (which Radicale computes over every member): for listings. */
export const LISTING_PROPS = COLLECTION_PROPS.filter(
  (p) => p !== "cs:getctag" && p !== "d:sync-token",
);

/** Lists the calendars of the calendar homes and the address books of the address-book homes. */
export async function listCollections(
  t: DavTransport,
  homes: DavHomes,
  signal?: AbortSignal,
  props: readonly string[] = COLLECTION_PROPS,
): Promise<DavCollection[]> {
  const wanted = new Map<string, Set<DavKind>>();
  for (const h of homes.calendarHomes)
    wanted.set(h, new Set([...(wanted.get(h) ?? []), "calendar"]));
  for (const h of homes.addressbookHomes) {
    wanted.set(h, new Set([...(wanted.get(h) ?? []), "addressbook"]));
  }
  const out: DavCollection[] = [];
  const seen = new Set<string>();
  for (const [home, kinds] of wanted) {
    const ms = await t.multistatus({
      method: "PROPFIND",
      href: home,
      depth: "1",
      body: propfindBody(props),
      signal,
    });
    for (const r of ms.responses) {
      const c = toCollection(r, t.origin);
      if (!c || !kinds.has(c.kind) || hrefKey(c.href, t.origin) === hrefKey(home, t.origin))
        continue;
      if (seen.has(c.href)) continue;
      seen.add(c.href);
      out.push(c);
    }
  }
  return out;
}

/** What resolving a collection needs; no getctag/sync-token, which Radicale computes over every member. */
export const RESOLVE_PROPS = ["d:resourcetype", "d:displayname", "d:supported-report-set"];

/** Reads one collection's properties (PROPFIND Depth 0). */
export async function collectionInfo(
  t: DavTransport,
  href: string,
  signal?: AbortSignal,
  props: readonly string[] = COLLECTION_PROPS,
): Promise<DavCollection | undefined> {
  const ms = await t.multistatus({
    method: "PROPFIND",
    href,
    depth: "0",
    body: propfindBody(props),
    signal,
  });
  const r = ms.responses[0];
  return r ? toCollection(r, t.origin) : undefined;
}

/** A response describing a calendar or address book, else undefined. */
export function toCollection(r: DavResponse, origin: string): DavCollection | undefined {
  const types = propChildren(r, "resourcetype");
  const kind: DavKind | undefined = types.includes("calendar")
    ? "calendar"
    : types.includes("addressbook")
      ? "addressbook"
      : undefined;
  if (!kind) return undefined;
  let href = hrefPath(r.href, origin);
  if (!href.endsWith("/")) href += "/";
  const c: DavCollection = { href, kind, reports: supportedReports(r) };
  const set = (key: "displayname" | "description" | "color" | "ctag" | "syncToken", v?: string) => {
    const s = v?.trim();
    if (s) c[key] = s;
  };
  set("displayname", propText(r, "displayname"));
  set(
    "description",
    propText(r, kind === "calendar" ? "calendar-description" : "addressbook-description"),
  );
  set("color", propText(r, "calendar-color"));
  set("ctag", propText(r, "getctag"));
  set("syncToken", propText(r, "sync-token"));
  return c;
}
