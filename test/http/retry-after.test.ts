import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { parseRetryAfter, resolveRetryPolicy, retryDelay } from "../../src/core/retry.js";
import { sameOrigin } from "../../src/http/index.js";

describe("parseRetryAfter", () => {
  it("reads delta-seconds", () => {
    expect(parseRetryAfter("0")).toBe(0);
    expect(parseRetryAfter(" 120 ")).toBe(120_000);
  });
  it("reads an HTTP-date relative to now", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now)).toBe(0);
  });
  it("ignores absent or garbage values", () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter("")).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter("-5")).toBeUndefined();
  });
});

describe("retryDelay", () => {
  test.prop([fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 0.999, noNaN: true })])(
    "stays within [min/2, max]",
    (attempt, r) => {
      const policy = resolveRetryPolicy({ minDelayMs: 100, maxDelayMs: 10_000, random: () => r });
      const d = retryDelay(attempt, new Error("x"), policy);
      expect(d).toBeGreaterThanOrEqual(50);
      expect(d).toBeLessThanOrEqual(10_000);
    },
  );
});

describe("sameOrigin", () => {
  it("compares scheme, host and port", () => {
    expect(sameOrigin("https://a.com/x?y", "https://a.com/base/")).toBe(true);
    expect(sameOrigin("/x", "https://a.com/base/")).toBe(true);
    expect(sameOrigin("https://a.com:444/x", "https://a.com/")).toBe(false);
    expect(sameOrigin("http://a.com/x", "https://a.com/")).toBe(false);
    expect(sameOrigin("https://b.com/x", "https://a.com/")).toBe(false);
    expect(sameOrigin("//b.com/x", "https://a.com/")).toBe(false);
  });
});
