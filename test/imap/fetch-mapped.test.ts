/**
 * `fetchMapped` keeps one answer per UID (the last), in UID order, whatever order the server
 * answers in, and drops unsolicited FETCH responses and UIDs not asked for.
 */
import { fc, test } from "@fast-check/vitest";
import type { FetchMessageObject, ImapFlow } from "imapflow";
import { describe, expect } from "vitest";
import { fetchMapped } from "../../adapters/imap/imap-messages.js";

const QUERY = { uid: true, flags: true };

/** A client whose `fetch` yields `responses` as given. */
function clientAnswering(responses: Partial<FetchMessageObject>[]): ImapFlow {
  return {
    async *fetch() {
      for (const r of responses) yield r as FetchMessageObject;
    },
  } as unknown as ImapFlow;
}

const response = fc.record({
  uid: fc.integer({ min: 1, max: 40 }),
  version: fc.integer({ min: 0, max: 1000 }),
  /** An unsolicited `* n FETCH (FLAGS …)` has no UID. */
  unsolicited: fc.boolean(),
});

describe("fetchMapped", () => {
  test.prop([
    fc.array(response, { maxLength: 60 }),
    fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 40 }))),
  ])("one value per wanted UID, the last answer's, sorted by UID", async (answers, wantedList) => {
    const wanted = wantedList === null ? undefined : new Set(wantedList);
    const client = clientAnswering(
      answers.map((a) =>
        a.unsolicited
          ? { seq: a.uid, flags: new Set([`$v${a.version}`]) }
          : { uid: a.uid, seq: a.uid, flags: new Set([`$v${a.version}`]) },
      ),
    );
    const got = await fetchMapped(
      client,
      "1:*",
      QUERY,
      (msg) => ({ uid: msg.uid, flags: [...(msg.flags ?? [])] }),
      undefined,
      wanted,
    );
    const expected = new Map<number, string[]>();
    for (const a of answers) {
      if (a.unsolicited || (wanted && !wanted.has(a.uid))) continue;
      expected.set(a.uid, [`$v${a.version}`]);
    }
    const sorted = [...expected.entries()].sort((x, y) => x[0] - y[0]);
    expect(got).toEqual(sorted.map(([uid, flags]) => ({ uid, flags })));
  });
});
