/**
 * A mapped message keeps only its own characters: imapflow slices every token out of the whole
 * response line, and a kept slice would keep the line alive (V8 sliced strings) for as long as
 * the importer holds the message.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { FetchMessageObject } from "imapflow";
import { describe, expect, it } from "vitest";
import { toMessage } from "../../adapters/imap/imap-messages.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** A message whose envelope strings are slices of one large response line, as imapflow's are. */
function sliced(i: number): FetchMessageObject {
  const line = `${i} `.repeat(50_000);
  const at = (s: string) => {
    const start = line.length / 2;
    return (line.slice(0, start) + s + line.slice(start)).slice(start, start + s.length);
  };
  return {
    uid: i + 1,
    seq: i + 1,
    flags: new Set(["\\Seen"]),
    envelope: {
      subject: at(`A subject long enough to be sliced ${i}`),
      messageId: at(`<message-${i}@example.com>`),
      inReplyTo: at(`<parent-${i}@example.com>`),
      from: [{ name: at(`Sender number ${i}`), address: at(`sender-${i}@example.com`) }],
      to: [{ name: at(`Recipient number ${i}`), address: at(`recipient-${i}@example.com`) }],
    },
  } as unknown as FetchMessageObject;
}

describe("toMessage", () => {
  it("keeps none of the response lines its strings were sliced from", () => {
    gc();
    const before = process.memoryUsage().heapUsed;
    const kept = Array.from({ length: 200 }, (_, i) => toMessage(sliced(i)));
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // 200 lines of ~150 KB each would be ~30 MB; the messages themselves are a few hundred KB.
    expect(grown).toBeLessThan(5 * 1024 * 1024);
    expect(kept[7]?.envelope?.subject).toBe("A subject long enough to be sliced 7");
    expect(kept[7]?.envelope?.from).toEqual([
      { name: "Sender number 7", address: "sender-7@example.com" },
    ]);
  });
});
