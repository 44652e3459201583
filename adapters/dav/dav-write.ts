/**
 * Writes for two-way sync: GET, and PUT and DELETE with `If-Match` / `If-None-Match` (RFC 4791 §5.3.2,
 * RFC 7232). A 412 is a `ConflictError` (the shared client's mapping).
 */
import { hrefPath } from "./dav-discovery.js";
import { type DavTransport, header } from "./dav-transport.js";

/** What to write: the member's href and its iCalendar or vCard text. */
export interface DavWrite {
  href: string;
  raw: string;
  /** Default: `text/vcard` for a VCARD body, else `text/calendar`. */
  contentType?: string;
}

export interface WriteOptions {
  /** Only overwrite this version (the etag last synced); a different one is a `ConflictError`. */
  ifMatch?: string;
  /** With neither `ifMatch` nor this: create only (`If-None-Match: *`). Default false. */
  overwrite?: boolean;
  signal?: AbortSignal;
}

export async function putItem(
  t: DavTransport,
  obj: DavWrite,
  options: WriteOptions = {},
): Promise<{ href: string; etag?: string }> {
  const headers: Record<string, string> = {};
  if (options.ifMatch !== undefined) headers["if-match"] = options.ifMatch;
  else if (!options.overwrite) headers["if-none-match"] = "*";
  const contentType =
    obj.contentType ??
    (/^\s*BEGIN:VCARD/i.test(obj.raw)
      ? "text/vcard; charset=utf-8"
      : "text/calendar; charset=utf-8");
  const reply = await t.send({
    method: "PUT",
    href: obj.href,
    body: obj.raw,
    contentType,
    headers,
    signal: options.signal,
  });
  return { href: hrefPath(obj.href, t.origin), etag: header(reply, "etag") };
}

export async function removeItem(
  t: DavTransport,
  href: string,
  options: Omit<WriteOptions, "overwrite"> = {},
): Promise<void> {
  const headers: Record<string, string> = {};
  if (options.ifMatch !== undefined) headers["if-match"] = options.ifMatch;
  await t.send({ method: "DELETE", href, headers, signal: options.signal });
}

/** A member's body and etag as the server holds it now; undefined when it does not exist. */
export async function getItem(
  t: DavTransport,
  href: string,
  signal?: AbortSignal,
): Promise<{ href: string; raw: string; etag?: string } | undefined> {
  const reply = await t.send({ method: "GET", href, expect: [200, 404, 410], signal });
  if (reply.status !== 200) return undefined;
  return { href: hrefPath(href, t.origin), raw: reply.text, etag: header(reply, "etag") };
}
