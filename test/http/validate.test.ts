import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ProtocolError } from "../../src/core/errors.js";
import { keptWhole, parseJsonBody } from "../../src/http/validate.js";

describe("keptWhole", () => {
  const Record = keptWhole(
    z.object({ id: z.string().min(1), when: z.object({ at: z.string() }).optional() }),
  );

  it("passes the value on whole, unknown fields and all, without copying it", () => {
    const raw = { id: "a", when: { at: "now", tz: "UTC" }, extra: [1, 2] };
    const out = Record.parse(raw);
    expect(out).toBe(raw);
    expect(out.extra).toEqual([1, 2]);
  });

  it("names the field that is wrong, nested paths included", () => {
    expect(() =>
      parseJsonBody(JSON.stringify({ id: "a", when: { at: 3 } }), Record, "x.get"),
    ).toThrow(/x\.get.*when\.at/);
    const error = (() => {
      try {
        parseJsonBody('{"id":""}', Record, "x.get");
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ProtocolError);
    expect(String((error as Error).message)).toMatch(/at id:/);
  });

  it("rejects what is not an object", () => {
    expect(Record.safeParse(null).success).toBe(false);
    expect(Record.safeParse("a").success).toBe(false);
  });
});
