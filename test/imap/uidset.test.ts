/**
 * UID ranges and the known-UID table of a mailbox cursor round-trip exactly.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import {
  decodeKnown,
  encodeKnown,
  fromRanges,
  splitRanges,
  toRanges,
} from "../../adapters/imap/imap-uidset.js";

const uids = fc.uniqueArray(fc.integer({ min: 1, max: 5000 }), { maxLength: 300 });

describe("imap uid sets", () => {
  test.prop([uids])("fromRanges(toRanges(x)) is x sorted", (list) => {
    expect(fromRanges(toRanges(list))).toEqual([...list].sort((a, b) => a - b));
  });

  test.prop([
    fc.array(
      fc.tuple(
        fc.integer({ min: 1, max: 3000 }),
        fc.constantFrom("", "\\Seen", "\\Flagged \\Seen", "$Work"),
      ),
      { maxLength: 200 },
    ),
  ])("a known table survives encode + decode", (entries) => {
    const known = new Map(entries);
    const cursor = { v: "1", n: 1, ...encodeKnown(known) };
    expect(decodeKnown(cursor)).toEqual(known);
  });

  test.prop([uids, fc.integer({ min: 1, max: 400 })])(
    "splitRanges takes the first n UIDs without expanding ranges",
    (list, n) => {
      const sorted = [...list].sort((a, b) => a - b);
      const { chunk, rest } = splitRanges(toRanges(list), n);
      expect(fromRanges(chunk)).toEqual(sorted.slice(0, n));
      expect(fromRanges(rest)).toEqual(sorted.slice(n));
    },
  );

  test("compact output", () => {
    expect(toRanges([5, 1, 2, 3, 7, 8])).toBe("1:3,5,7:8");
    expect(toRanges([])).toBe("");
  });
});
