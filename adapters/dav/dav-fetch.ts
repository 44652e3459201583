/**
 * Member bodies: the `DavItem` mapping and `calendar-multiget` / `addressbook-multiget` in batches.
 */
import { ProtocolError } from "../../src/core/errors.js";
import type { Change, SyncObject } from "../../src/core/types.js";
import { type DavKind, hrefKey, hrefPath } from "./dav-discovery.js";
import { type DavResponse, propText } from "./dav-multistatus.js";
import { type DavBasics, parseBasics } from "./dav-parse.js";
import type { DavTransport } from "./dav-transport.js";
import { multigetBody } from "./dav-xml.js";

/** A calendar object or vCard as exported: the raw text plus parsed basics. */
export interface DavItem extends DavBasics {
  /** Absolute path of the member; also its sourcekey. */
  href: string;
  /** Absolute path of the collection holding it; also its parentKey. */
  collection: string;
  /** The etag the server gave with the body (RFC 6578 §5: trust the fetch's etag). */
  etag?: string;
  /** The iCalendar or vCard text exactly as the server returned it. */
  raw: string;
}

/** Options shared by the item sources of one account. */
export interface ItemOptions {
  /** Ask for `calendar-data` / `address-data` inside the sync report (one request). */
  inline: boolean;
  /** `DAV:limit` sent with sync-collection; undefined: none. */
  limit?: number;
  /** Hrefs per multiget request. */
  batch: number;
  /** Parse the basics with ical.js. */
  parse: boolean;
}

export const dataProp = (kind: DavKind): string =>
  kind === "calendar" ? "c:calendar-data" : "cr:address-data";

const dataName = (kind: DavKind): string =>
  kind === "calendar" ? "calendar-data" : "address-data";

/** The body in a response, when the server returned one. */
export function dataOf(r: DavResponse, kind: DavKind): string | undefined {
  return r.props.has(dataName(kind)) ? (propText(r, dataName(kind)) ?? "") : undefined;
}

export function etagOf(r: DavResponse): string | undefined {
  const e = propText(r, "getetag")?.trim();
  return e || undefined;
}

export function toItem(
  href: string,
  collection: string,
  etag: string | undefined,
  raw: string,
  options: ItemOptions,
): SyncObject<DavItem> {
  const basics = options.parse ? parseBasics(raw) : {};
  const data: DavItem = { ...basics, href, collection, raw };
  if (etag !== undefined) data.etag = etag;
  return { sourcekey: href, type: "item", parentKey: collection, changeKey: etag, data };
}

/** A member that no longer exists (DAV has no soft deletes). */
export function itemDelete(href: string, collection: string): Change {
  return {
    kind: "delete",
    object: { sourcekey: href, type: "item", parentKey: collection },
    soft: false,
  };
}

/**
 * The current version of members delivered earlier (the engine's `verify` after a resume whose
 * new answer no longer names them): multiget, a body → `update`, a 404 → `delete`.
 */
export async function verifyItems(
  t: DavTransport,
  collection: string,
  kind: DavKind,
  hrefs: readonly string[],
  options: ItemOptions,
  signal?: AbortSignal,
): Promise<Change[]> {
  // A key outside the collection (a crafted state) is never asked for: the scope can't hold it.
  const inside = hrefs.filter((h) => h.startsWith(collection) && !h.endsWith("/"));
  const fetched = inside.length
    ? await multiget(t, collection, kind, inside, options, signal)
    : undefined;
  return hrefs.map((h): Change => {
    const got = fetched?.get(hrefKey(h, t.origin));
    return got
      ? {
          kind: "update",
          object: toItem(h, collection, got.etag, got.raw, options),
          created: false,
        }
      : itemDelete(h, collection);
  });
}

/** What a multiget returned for one href: its body and etag, or `null` when it is gone (404). */
export type Fetched = Map<string, { etag?: string; raw: string } | null>;

/**
 * Fetches the bodies of `hrefs` with multiget, `options.batch` hrefs per request, one request
 * after the other. Keys of the result are `hrefKey`s. An href the server leaves out of its answer
 * is a `ProtocolError` (skipping it would lose the change).
 */
export async function multiget(
  t: DavTransport,
  collection: string,
  kind: DavKind,
  hrefs: readonly string[],
  options: ItemOptions,
  signal?: AbortSignal,
): Promise<Fetched> {
  const out: Fetched = new Map();
  for (let i = 0; i < hrefs.length; i += options.batch) {
    const chunk = hrefs.slice(i, i + options.batch);
    const ms = await t.multistatus({
      method: "REPORT",
      href: collection,
      depth: "1",
      body: multigetBody(kind, chunk, ["d:getetag", dataProp(kind)]),
      signal,
    });
    for (const r of ms.responses) {
      const key = hrefKey(r.href, t.origin);
      const raw = dataOf(r, kind);
      if (raw !== undefined) out.set(key, { etag: etagOf(r), raw });
      else if (r.status === 404 || r.props.size === 0) out.set(key, null);
    }
    for (const h of chunk) {
      if (!out.has(hrefKey(h, t.origin))) {
        throw new ProtocolError(
          `REPORT ${ms.url}`,
          `multiget answered nothing for ${hrefPath(h, t.origin)}`,
        );
      }
    }
  }
  return out;
}
