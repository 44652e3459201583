/**
 * Telemetry per run and per batch on `node:diagnostics_channel`, bridged to OpenTelemetry spans
 * (a no-op unless the application registered a tracer provider). Payloads carry counts, keys and
 * redacted error text only: never a state, a record, a token or a credential.
 */
import diagnostics_channel from "node:diagnostics_channel";
import { type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import { describeError } from "./redact.js";

/** The channel names, one per event kind. Subscribe with `diagnostics_channel.subscribe(name, fn)`. */
export const channels = {
  start: "deltasync:sync:start",
  page: "deltasync:sync:page",
  batch: "deltasync:sync:batch",
  retry: "deltasync:sync:retry",
  reset: "deltasync:sync:reset",
  end: "deltasync:sync:end",
  error: "deltasync:sync:error",
} as const;

export type TelemetryEventName = keyof typeof channels;

/** Fields every event carries. */
export interface TelemetryBase {
  /** Unique per `runSync` call. */
  runId: string;
  /** The serialisation / state key (credential-free). */
  key: string;
  adapter: string;
  scope: string;
}

export interface StartEvent extends TelemetryBase {
  /** True when a saved state was found. */
  resumed: boolean;
}
export interface PageEvent extends TelemetryBase {
  /** Pages fetched so far in this run. */
  pages: number;
}
export interface BatchEvent extends TelemetryBase {
  /** 1-based batch number in this run. */
  batch: number;
  /** Changes in the batch (at most `batchSize`). */
  size: number;
  updated: number;
  deleted: number;
  read: number;
  /** Time spent in the batch callbacks and the state save (ms). */
  durationMs: number;
}
export interface RetryEvent extends TelemetryBase {
  attempt: number;
  delayMs: number;
  /** `Name: message`, with credentials masked. */
  error: string;
  code: string | undefined;
}
export interface ResetEvent extends TelemetryBase {
  error: string;
}
export interface EndEvent extends TelemetryBase {
  updated: number;
  deleted: number;
  read: number;
  pages: number;
  batches: number;
  durationMs: number;
  fullSync: boolean;
  reset: boolean;
}
export interface ErrorEvent extends TelemetryBase {
  error: string;
  code: string | undefined;
  durationMs: number;
}

const chan = Object.fromEntries(
  Object.entries(channels).map(([k, name]) => [k, diagnostics_channel.channel(name)]),
) as Record<TelemetryEventName, diagnostics_channel.Channel>;

let counter = 0;

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Emits the events of one run. */
export class RunTelemetry {
  readonly base: TelemetryBase;
  readonly #span: Span;
  readonly #started = performance.now();

  constructor(key: string, adapter: string, scope: string) {
    this.base = {
      runId: `${process.pid}-${Date.now().toString(36)}-${++counter}`,
      key,
      adapter,
      scope,
    };
    this.#span = trace.getTracer("deltasync").startSpan("deltasync.sync", {
      attributes: { "deltasync.key": key, "deltasync.adapter": adapter, "deltasync.scope": scope },
    });
  }

  get elapsedMs(): number {
    return Math.round(performance.now() - this.#started);
  }

  start(resumed: boolean): void {
    this.#publish("start", { ...this.base, resumed } satisfies StartEvent);
  }

  page(pages: number): void {
    if (chan.page.hasSubscribers)
      this.#publish("page", { ...this.base, pages } satisfies PageEvent);
  }

  batch(event: Omit<BatchEvent, keyof TelemetryBase>): void {
    this.#publish("batch", { ...this.base, ...event } satisfies BatchEvent);
    this.#span.addEvent("batch", { ...event });
  }

  retry(attempt: number, delayMs: number, error: unknown): void {
    const e: RetryEvent = {
      ...this.base,
      attempt,
      delayMs,
      error: describeError(error),
      code: errorCode(error),
    };
    this.#publish("retry", e);
    this.#span.addEvent("retry", { attempt, delayMs, error: e.error });
  }

  reset(error: unknown): void {
    const e: ResetEvent = { ...this.base, error: describeError(error) };
    this.#publish("reset", e);
    this.#span.addEvent("reset", { error: e.error });
  }

  end(result: Omit<EndEvent, keyof TelemetryBase>): void {
    this.#publish("end", { ...this.base, ...result } satisfies EndEvent);
    this.#span.setAttributes({ ...result });
    this.#span.end();
  }

  error(error: unknown): void {
    const e: ErrorEvent = {
      ...this.base,
      error: describeError(error),
      code: errorCode(error),
      durationMs: this.elapsedMs,
    };
    this.#publish("error", e);
    this.#span.recordException({ name: e.code ?? "Error", message: e.error });
    this.#span.setStatus({ code: SpanStatusCode.ERROR, message: e.error });
    this.#span.end();
  }

  #publish(name: TelemetryEventName, payload: object): void {
    const c = chan[name];
    if (c.hasSubscribers) c.publish(payload);
  }
}
