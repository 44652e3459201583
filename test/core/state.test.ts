import { fc, test as propTest } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { decodeState, encodeState, StateError } from "../../src/index.js";

describe("state envelope", () => {
  propTest.prop([
    fc.string({ minLength: 1 }),
    fc.string({ minLength: 1 }),
    fc.jsonValue(),
    fc.option(fc.dictionary(fc.string(), fc.string({ minLength: 1, maxLength: 12 })), {
      nil: undefined,
    }),
  ])("round-trips and is URL-safe", (adapter, scope, cursor, delivered) => {
    const env = { adapter, scope, cursor: cursor ?? 0, page: 1, delivered };
    const s = encodeState(env);
    expect(s).toMatch(/^ds1\.[A-Za-z0-9_-]*$/);
    const back = decodeState(s, adapter, scope);
    expect(back.adapter).toBe(adapter);
    expect(JSON.stringify(back.cursor)).toBe(JSON.stringify(env.cursor));
    const kept = delivered && Object.keys(delivered).length ? delivered : undefined;
    expect(back.delivered).toEqual(kept);
  });

  propTest.prop([fc.string()])("arbitrary strings are StateErrors, never crashes", (junk) => {
    try {
      decodeState(junk, "a", "s");
    } catch (e) {
      expect(e).toBeInstanceOf(StateError);
      return;
    }
    throw new Error(`accepted ${junk}`);
  });

  it("quotes a bounded part of a crafted adapter name", () => {
    const s = encodeState({ adapter: "a".repeat(5_000_000), scope: "s", cursor: "t" });
    const error = (() => {
      try {
        decodeState(s, "memory", "s");
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(StateError);
    expect(error?.message.length).toBeLessThan(400);
  });

  it("reads a legacy skip count and ignores it (the page is replayed, never skipped)", () => {
    const legacy = `ds1.${Buffer.from(JSON.stringify({ v: 1, a: "x", s: "y", c: 1, p: 2, k: 999999 })).toString("base64url")}`;
    expect(decodeState(legacy, "x", "y")).toMatchObject({ cursor: 1, page: 2 });
  });

  it("names the owner of a foreign state", () => {
    const s = encodeState({ adapter: "google", scope: "folder:primary", cursor: "t" });
    expect(() => decodeState(s, "memory", "folder:primary")).toThrow(/adapter "google"/);
    expect(() => decodeState(s, "google", "gab")).toThrow(/scope "folder:primary"/);
  });
});
