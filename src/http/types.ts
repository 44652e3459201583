/**
 * The public shape of the shared HTTP client (see docs/http.md).
 */
import type { Dispatcher } from "undici";
import type { ZodType } from "zod";

/** Options of `createHttpClient`. */
export interface HttpClientOptions {
  /** Requests are relative to it (RFC 3986 resolution); absolute URLs must share its origin. */
  baseUrl: string;
  /** A fixed bearer token. */
  accessToken?: string;
  /** Supplies the bearer token; called with `forceRefresh: true` once after a 401, then `AuthError`. */
  getAccessToken?: (opts: { forceRefresh: boolean }) => Promise<string>;
  /** HTTP Basic credentials (ignored when a bearer token is configured). */
  basicAuth?: { username: string; password: string };
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Time allowed for the response headers and between body chunks; default 30 000 ms. */
  timeoutMs?: number;
  /** Upper bound of sockets per origin in the keep-alive pool; default 8. */
  connections?: number;
  /** Retries of idempotent requests on transient failures; defaults 3 / 200 ms / 30 000 ms. */
  retry?: { retries?: number; minDelayMs?: number; maxDelayMs?: number };
  /** Use this dispatcher instead of the client's own `Agent` (it is not closed by `close()`). */
  dispatcher?: Dispatcher;
  /**
   * Maps a response whose status was not expected to an error, before the default mapping.
   * Return a `TransientError` to make it retried, `undefined` to fall back to the default.
   */
  classify?: (response: HttpErrorResponse) => Error | undefined;
  /** Waits between retries; tests replace it to observe delays without waiting. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** A query value; an array repeats the parameter (`historyTypes=a&historyTypes=b`). */
export type QueryValue = string | number | boolean | undefined | readonly (string | number)[];

/** One request. */
export interface HttpRequest<T> {
  /** Default `GET`. */
  method?: string;
  /** Relative to `baseUrl`, or an absolute URL on its origin (a server's paging link). */
  path: string;
  /** Appended to the URL; `undefined` values are left out. */
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Sent as `application/json`. */
  json?: unknown;
  /** Validates a 2xx body parsed as JSON; without it `body` is the response text. */
  schema?: ZodType<T>;
  /**
   * Statuses returned instead of thrown (default: every 2xx). A non-2xx status listed here is
   * returned with `body` set to the parsed JSON when it parses (unvalidated), else the text.
   */
  expect?: number[];
  signal?: AbortSignal;
  /** The name used in errors, e.g. `calendar.events.list`; default `METHOD /path`. */
  endpoint?: string;
  /** Whether a transient failure may be retried; default true for GET/HEAD/OPTIONS/PUT/DELETE. */
  idempotent?: boolean;
}

/** One response. */
export interface HttpResponse<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  /** The raw body text. */
  text?: string;
  /** The URL that answered. */
  url: string;
}

/** What `classify` sees of an unexpected response. */
export interface HttpErrorResponse {
  status: number;
  method: string;
  endpoint: string;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Milliseconds from `Retry-After`, when the server sent one. */
  retryAfterMs: number | undefined;
}

/** The shared client: one keep-alive pool, auth, retries, validation. */
export interface HttpClient {
  /** Sends one request (with retries where allowed) and returns the validated response. */
  request<T = string>(req: HttpRequest<T>): Promise<HttpResponse<T>>;
  /** Closes the pool (safe to call twice). */
  close(): Promise<void>;
  /** The normalized base URL (with a trailing slash). */
  readonly baseUrl: string;
}
