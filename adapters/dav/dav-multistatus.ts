/**
 * Reads a `207 Multi-Status` body (RFC 4918 §13) into plain responses.
 */
import { ProtocolError } from "../../src/core/errors.js";
import { child, childNames, children, isNode, parseXml, textOf, type XmlValue } from "./dav-xml.js";

/** One `<response>` of a multistatus. */
export interface DavResponse {
  /** The member's href as the server wrote it (entities decoded). */
  href: string;
  /** The response-level status (404 for a removed member, 507 for truncation), if any. */
  status?: number;
  /** Properties found with a 200 propstat, by local name. */
  props: Map<string, XmlValue>;
  /** Local names of the elements under `<error>`, if any (e.g. `number-of-matches-within-limits`). */
  errors: string[];
}

export interface MultiStatus {
  responses: DavResponse[];
  /** RFC 6578 §3.2: the `<sync-token>` that is a direct child of `<multistatus>`. */
  syncToken?: string;
}

/** Parses a multistatus body; anything else is a `ProtocolError` naming `endpoint`. */
export function parseMultistatus(text: string, endpoint: string): MultiStatus {
  const root = parseXml(text, endpoint);
  const ms = root.multistatus;
  if (ms === undefined || Array.isArray(ms)) {
    throw new ProtocolError(endpoint, "expected a <multistatus> body");
  }
  const responses: DavResponse[] = [];
  for (const r of children(ms, "response")) {
    const hrefNode = child(r, "href");
    if (hrefNode === undefined) throw new ProtocolError(endpoint, "a <response> has no <href>");
    const href = textOf(hrefNode).trim();
    const statusNode = child(r, "status");
    const props = new Map<string, XmlValue>();
    for (const ps of children(r, "propstat")) {
      const code = parseStatus(textOf(child(ps, "status")));
      if (code === undefined)
        throw new ProtocolError(endpoint, `a <propstat> of ${href} has no status`);
      if (code < 200 || code > 299) continue;
      const prop = child(ps, "prop");
      for (const name of childNames(prop)) {
        const value = isNode(prop) ? prop[name] : undefined;
        if (value !== undefined) props.set(name, Array.isArray(value) ? (value[0] ?? "") : value);
      }
    }
    const status = statusNode === undefined ? undefined : parseStatus(textOf(statusNode));
    responses.push({ href, status, props, errors: childNames(child(r, "error")) });
  }
  const tokenNode = child(ms, "sync-token");
  const syncToken = tokenNode === undefined ? undefined : textOf(tokenNode).trim();
  return { responses, syncToken: syncToken || undefined };
}

/** `HTTP/1.1 404 Not Found` → 404. */
export function parseStatus(line: string): number | undefined {
  const m = /^\s*HTTP\/\d(?:\.\d)?\s+(\d{3})/i.exec(line);
  return m ? Number(m[1]) : undefined;
}

/** A property's text, or undefined when the server did not return it. */
export function propText(r: DavResponse, name: string): string | undefined {
  const v = r.props.get(name);
  if (v === undefined) return undefined;
  return textOf(v);
}

/** The hrefs inside a property such as `calendar-home-set` or `current-user-principal`. */
export function propHrefs(r: DavResponse, name: string): string[] {
  return children(r.props.get(name), "href")
    .map((h) => textOf(h).trim())
    .filter(Boolean);
}

/** The local names of the elements inside a property (e.g. `resourcetype` → `collection`). */
export function propChildren(r: DavResponse, name: string): string[] {
  return childNames(r.props.get(name));
}

/**
 * The reports of a `supported-report-set`. RFC 3253 wraps each in `<report>`; Xandikos puts the
 * report element straight under `<supported-report>`: both are read.
 */
export function supportedReports(r: DavResponse): string[] {
  const out: string[] = [];
  for (const sr of children(r.props.get("supported-report-set"), "supported-report")) {
    const report = child(sr, "report");
    out.push(...childNames(report ?? sr).filter((n) => n !== "report"));
  }
  return out;
}
