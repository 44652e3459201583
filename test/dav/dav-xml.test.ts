import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hrefPath } from "../../adapters/dav/dav-discovery.js";
import { parseMultistatus, supportedReports } from "../../adapters/dav/dav-multistatus.js";
import { parseBasics } from "../../adapters/dav/dav-parse.js";
import {
  decodeEntities,
  escapeXml,
  parseXml,
  syncCollectionBody,
  textOf,
} from "../../adapters/dav/dav-xml.js";
import { ProtocolError } from "../../src/core/errors.js";

describe("dav XML", () => {
  it("round-trips any text through escapeXml and decodeEntities", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        expect(decodeEntities(escapeXml(s))).toBe(s);
      }),
    );
  });

  it("round-trips any text through an XML element (line ends normalized as XML 1.0 §2.11 says)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("a", "&", "<", ">", '"', "'", "\r\n", " ", "é", "𝄞") }),
        (s) => {
          const root = parseXml(`<x><y>${escapeXml(s)}</y></x>`, "test");
          expect(textOf((root.x as Record<string, never>).y)).toBe(s.replace(/\r\n/g, "\n"));
        },
      ),
    );
  });

  it.each([
    ["DOCTYPE", '<!DOCTYPE x SYSTEM "http://evil/x.dtd"><x/>'],
    ["ENTITY", '<x><!ENTITY a "b"></x>'],
    ["lower-case doctype", "<!doctype x><x/>"],
    ["unclosed", "<x><y></x>"],
    ["text", "hello"],
  ])("refuses %s bodies with a ProtocolError naming the endpoint", (_name, body) => {
    expect(() => parseXml(body, "REPORT https://h/c/")).toThrow(ProtocolError);
    expect(() => parseXml(body, "REPORT https://h/c/")).toThrow(/REPORT https:\/\/h\/c\//);
  });

  it("reads responses, statuses, the top-level sync-token and both supported-report shapes", () => {
    const ms = parseMultistatus(
      `<ns0:multistatus xmlns:ns0="DAV:" xmlns:ns2="urn:ietf:params:xml:ns:caldav">
        <ns0:response><ns0:href>/c/</ns0:href><ns0:propstat><ns0:status>HTTP/1.1 200 OK</ns0:status>
          <ns0:prop><ns0:supported-report-set>
            <ns0:supported-report><ns2:calendar-multiget/></ns0:supported-report>
            <ns0:supported-report><ns0:report><ns0:sync-collection/></ns0:report></ns0:supported-report>
          </ns0:supported-report-set></ns0:prop></ns0:propstat>
          <ns0:propstat><ns0:status>HTTP/1.1 404 Not Found</ns0:status><ns0:prop><ns0:displayname/></ns0:prop></ns0:propstat>
        </ns0:response>
        <ns0:response><ns0:href>/c/x.ics</ns0:href><ns0:status>HTTP/1.1 404 Not Found</ns0:status></ns0:response>
        <ns0:sync-token>tok&amp;1</ns0:sync-token></ns0:multistatus>`,
      "test",
    );
    expect(ms.syncToken).toBe("tok&1");
    expect(ms.responses.map((r) => [r.href, r.status])).toEqual([
      ["/c/", undefined],
      ["/c/x.ics", 404],
    ]);
    const first = ms.responses[0];
    expect(first && supportedReports(first)).toEqual(["calendar-multiget", "sync-collection"]);
    expect(first?.props.has("displayname")).toBe(false);
  });

  it("escapes tokens in request bodies", () => {
    expect(syncCollectionBody("a<&>b", ["d:getetag"])).toContain(
      "<d:sync-token>a&lt;&amp;&gt;b</d:sync-token>",
    );
    expect(syncCollectionBody("", ["d:getetag"], 10)).toContain("<d:nresults>10</d:nresults>");
  });
});

describe("dav item basics (ical.js)", () => {
  it("reads uid, summary, start/end, time zone and last-modified of an event", () => {
    const b = parseBasics(
      "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:u1\r\nSUMMARY:Team\r\n" +
        "DTSTART;TZID=Europe/Paris:20240102T100000\r\nDTEND;TZID=Europe/Paris:20240102T110000\r\n" +
        "LAST-MODIFIED:20240101T120000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    );
    expect(b).toMatchObject({
      component: "VEVENT",
      uid: "u1",
      summary: "Team",
      start: "2024-01-02T10:00:00",
      end: "2024-01-02T11:00:00",
      timeZone: "Europe/Paris",
      allDay: false,
      lastModified: "2024-01-01T12:00:00.000Z",
    });
  });

  it("reads all-day events, tasks and vCards, and never throws on garbage", () => {
    expect(
      parseBasics(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20240105\r\nEND:VEVENT\r\nEND:VCALENDAR",
      ),
    ).toMatchObject({ start: "2024-01-05", allDay: true });
    expect(
      parseBasics(
        "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t\r\nDUE:20240105T100000Z\r\nEND:VTODO\r\nEND:VCALENDAR",
      ),
    ).toMatchObject({ component: "VTODO", end: "2024-01-05T10:00:00Z" });
    expect(
      parseBasics("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c\r\nFN:Ann Lee\r\nEND:VCARD"),
    ).toMatchObject({
      component: "VCARD",
      uid: "c",
      fn: "Ann Lee",
    });
    fc.assert(
      fc.property(fc.string(), (s) => {
        const b = parseBasics(s);
        expect(typeof b).toBe("object");
      }),
    );
  });
});

describe("dav vCard text escapes", () => {
  it.each(["3.0", "4.0"])(
    "undoes \\; \\, \\\\ and \\n in FN (vCard %s), folded or grouped",
    (version) => {
      const card = (fn: string) =>
        parseBasics(`BEGIN:VCARD\r\nVERSION:${version}\r\nUID:c\r\n${fn}\r\nEND:VCARD\r\n`).fn;
      expect(card("FN:Doe\\; John\\, Jr.")).toBe("Doe; John, Jr.");
      expect(card("FN:back\\\\slash\\nnext")).toBe("back\\slash\nnext");
      // An escaped backslash before a semicolon is a backslash, then a plain semicolon.
      expect(card("FN:a\\\\;b")).toBe("a\\;b");
      expect(card("item1.FN;CHARSET=utf-8:Acme\\; Co\r\n  Ltd")).toBe("Acme; Co Ltd");
      expect(card("FN:No escapes; at all")).toBe("No escapes; at all");
    },
  );
});

describe("dav hrefs", () => {
  it("reads an href's path exactly as the URL parser does, fast path or not", () => {
    const segment = fc.string({
      unit: fc.constantFrom(
        "a",
        "Z",
        "0",
        "-",
        "_",
        ".",
        "%20",
        "%C3%A9",
        "@",
        "+",
        ",",
        " ",
        "é",
        "~",
      ),
      minLength: 1,
      maxLength: 6,
    });
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 4 }), fc.boolean(), (parts, slash) => {
        const href = `/${parts.join("/")}${slash && parts.length ? "/" : ""}`;
        const origin = "http://h.example/";
        expect(hrefPath(href, origin)).toBe(new URL(href, origin).pathname);
        expect(hrefPath(`http://h.example${href}`, origin)).toBe(new URL(href, origin).pathname);
      }),
    );
  });
});
