/**
 * WebDAV XML: request bodies and a safe multistatus reader.
 *
 * Parsing goes through fast-xml-parser with entity processing OFF; any DOCTYPE or ENTITY
 * declaration is refused before parsing (no XXE, no billion laughs). Only the five predefined
 * entities and numeric character references are decoded, by hand, after parsing.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { ProtocolError } from "../../src/core/errors.js";

/** A parsed element: child elements by local name (namespace prefixes removed), text in `#text`. */
export type XmlNode = { [name: string]: XmlValue };
export type XmlValue = string | XmlNode | XmlValue[];

const CDATA = "#cdata";
const TEXT = "#text";

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  trimValues: false,
  cdataPropName: CDATA,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Bodies are text, not markup: kept raw (a third faster on big reports), decoded by textOf.
  stopNodes: ["*.calendar-data", "*.address-data"],
  jPath: false,
});

const DECLARATION = /<!(DOCTYPE|ENTITY)/i;

/**
 * Parses an XML body. Refuses DOCTYPE/ENTITY declarations and malformed XML with a
 * `ProtocolError` naming `endpoint` (the request URL).
 */
export function parseXml(text: string, endpoint: string): XmlNode {
  if (DECLARATION.test(text)) {
    throw new ProtocolError(endpoint, "XML body with a DOCTYPE or ENTITY declaration refused");
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new ProtocolError(
      endpoint,
      `malformed XML: ${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = parser.parse(text);
  } catch (cause) {
    throw new ProtocolError(endpoint, "malformed XML", { cause });
  }
  if (!isNode(parsed)) throw new ProtocolError(endpoint, "XML body has no root element");
  return parsed;
}

export function isNode(value: unknown): value is XmlNode {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every child element named `name` (an element that occurs once is still returned as a list). */
export function children(node: XmlValue | undefined, name: string): XmlValue[] {
  if (!isNode(node)) return [];
  const value = node[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export function child(node: XmlValue | undefined, name: string): XmlValue | undefined {
  return children(node, name)[0];
}

/** The local names of the child elements of `node`. */
export function childNames(node: XmlValue | undefined): string[] {
  if (!isNode(node)) return [];
  return Object.keys(node).filter((k) => k !== TEXT && k !== CDATA);
}

/** The text content of an element, entities decoded, CDATA kept verbatim. */
export function textOf(value: XmlValue | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "string") return decodeText(value);
  if (Array.isArray(value)) return value.map(textOf).join("");
  let out = "";
  const text = value[TEXT];
  if (text !== undefined) out += textOf(text);
  const cdata = value[CDATA];
  if (cdata !== undefined) out += rawText(cdata);
  return out;
}

function rawText(value: XmlValue): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(rawText).join("");
  return "";
}

const CDATA_SECTION = /<!\[CDATA\[([\s\S]*?)\]\]>/g;

/** Decodes raw element content: CDATA sections verbatim, entities elsewhere. */
function decodeText(raw: string): string {
  if (!raw.includes("<![CDATA[")) return decodeEntities(raw);
  let out = "";
  let last = 0;
  for (const m of raw.matchAll(CDATA_SECTION)) {
    out += decodeEntities(raw.slice(last, m.index)) + (m[1] ?? "");
    last = (m.index ?? 0) + m[0].length;
  }
  return out + decodeEntities(raw.slice(last));
}

const ENTITY = /&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g;
const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/** Decodes the predefined XML entities and character references; nothing else is expanded. */
export function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(ENTITY, (whole, ref: string) => {
    if (ref.startsWith("#")) {
      const code =
        ref[1] === "x" ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED[ref] ?? whole;
  });
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Prefixes used in request bodies: `d:` DAV, `c:` CalDAV, `cr:` CardDAV, `cs:` CalendarServer. */
const NAMESPACES =
  'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" ' +
  'xmlns:cr="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/" ' +
  'xmlns:ic="http://apple.com/ns/ical/"';

const HEAD = '<?xml version="1.0" encoding="utf-8"?>\n';

const propList = (props: readonly string[]): string =>
  `<d:prop>${props.map((p) => `<${p}/>`).join("")}</d:prop>`;

/** `PROPFIND` body asking for the given prefixed properties, e.g. `d:getetag`. */
export function propfindBody(props: readonly string[]): string {
  return `${HEAD}<d:propfind ${NAMESPACES}>${propList(props)}</d:propfind>`;
}

/** RFC 6578 §3.2 `sync-collection` body (`sync-level` 1; an empty token is an initial sync). */
export function syncCollectionBody(
  token: string,
  props: readonly string[],
  limit?: number,
): string {
  const tokenXml = token ? `<d:sync-token>${escapeXml(token)}</d:sync-token>` : "<d:sync-token/>";
  const limitXml = limit ? `<d:limit><d:nresults>${limit}</d:nresults></d:limit>` : "";
  return (
    `${HEAD}<d:sync-collection ${NAMESPACES}>${tokenXml}<d:sync-level>1</d:sync-level>` +
    `${limitXml}${propList(props)}</d:sync-collection>`
  );
}

/** RFC 4791 §7.9 `calendar-multiget` / RFC 6352 §8.7 `addressbook-multiget` body. */
export function multigetBody(
  kind: "calendar" | "addressbook",
  hrefs: readonly string[],
  props: readonly string[],
): string {
  const tag = kind === "calendar" ? "c:calendar-multiget" : "cr:addressbook-multiget";
  const list = hrefs.map((h) => `<d:href>${escapeXml(h)}</d:href>`).join("");
  return `${HEAD}<${tag} ${NAMESPACES}>${propList(props)}${list}</${tag}>`;
}
