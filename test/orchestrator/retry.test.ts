import { type Span, type SpanOptions, type Tracer, trace } from "@opentelemetry/api";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { TransientError } from "../../src/core/errors.js";
import { parseRetryAfter, resolveRetryPolicy, retryDelay } from "../../src/core/retry.js";
import { describeError, redact } from "../../src/orchestrator/redact.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createFakeScope } from "./fake.js";

describe("Retry-After", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("parses delay-seconds and HTTP-dates", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter("1.5", now)).toBeUndefined();
  });

  it("retryDelay honours retryAfterMs (capped) and otherwise backs off with jitter in [step/2, step]", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (attempt, r) => {
          const p = resolveRetryPolicy({ minDelayMs: 100, maxDelayMs: 10_000, random: () => r });
          const step = Math.min(10_000, 100 * 2 ** (attempt - 1));
          const d = retryDelay(attempt, new Error("x"), p);
          expect(d).toBeGreaterThanOrEqual(Math.floor(step / 2));
          expect(d).toBeLessThanOrEqual(step);
          expect(retryDelay(attempt, new TransientError("429", { retryAfterMs: 1234 }), p)).toBe(
            1234,
          );
          expect(retryDelay(attempt, new TransientError("429", { retryAfterMs: 1e9 }), p)).toBe(
            10_000,
          );
        },
      ),
    );
  });

  it("waits the server's Retry-After before retrying", async () => {
    const fake = createFakeScope({ items: 2 });
    const times: number[] = [];
    fake.fault = (n) => {
      times.push(performance.now());
      if (n === 1) throw new TransientError("429", { status: 429, retryAfterMs: 80 });
    };
    await runSync(fake.syncable, { onUpdated() {}, retry: { minDelayMs: 0 } });
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(75);
  });
});

describe("redaction", () => {
  it("masks URL userinfo, bearer tokens and password/token parameters", () => {
    expect(redact("GET https://bob:pa55@host/x")).toBe("GET https://***@host/x");
    expect(redact("Authorization: Bearer abc.def-ghi")).not.toContain("abc.def");
    expect(redact("login failed: password=hunter2 user=bob")).toBe(
      "login failed: password=*** user=bob",
    );
    expect(redact("x?access_token=ya29.abc&y=1")).toBe("x?access_token=***&y=1");
    expect(redact("plain words", ["words"])).toBe("plain ***");
    expect(describeError(new TypeError("a\nb"))).toBe("TypeError: a b");
  });
});

describe("OpenTelemetry bridge", () => {
  const spans: { name: string; events: string[]; ended: boolean; status?: number }[] = [];
  const tracer: Tracer = {
    startSpan(name: string, _options?: SpanOptions): Span {
      const rec = {
        name,
        events: [] as string[],
        ended: false,
        status: undefined as number | undefined,
      };
      spans.push(rec);
      const span = {
        addEvent: (e: string) => {
          rec.events.push(e);
          return span;
        },
        setAttributes: () => span,
        setAttribute: () => span,
        setStatus: (s: { code: number }) => {
          rec.status = s.code;
          return span;
        },
        recordException: () => undefined,
        end: () => {
          rec.ended = true;
        },
        isRecording: () => true,
        updateName: () => span,
        spanContext: () => ({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 1 }),
        addLink: () => span,
        addLinks: () => span,
      } as unknown as Span;
      return span;
    },
    startActiveSpan: (() => undefined) as unknown as Tracer["startActiveSpan"],
  };
  trace.setGlobalTracerProvider({ getTracer: () => tracer });
  afterAll(() => trace.disable());

  it("one span per run with a batch event per batch; errors end the span with ERROR", async () => {
    const fake = createFakeScope({ items: 7, pageSize: 3 });
    await runSync(fake.syncable, { onUpdated() {}, batchSize: 3 });
    const span = spans.at(-1);
    expect(span).toMatchObject({ name: "deltasync.sync", ended: true });
    expect(span?.events.filter((e) => e === "batch")).toHaveLength(3);
    fake.fault = () => {
      throw new Error("down");
    };
    await expect(runSync(fake.syncable, { onUpdated() {}, key: "x" })).rejects.toThrow("down");
    expect(spans.at(-1)).toMatchObject({ ended: true, status: 2 });
  });
});
