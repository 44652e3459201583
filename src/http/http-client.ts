/**
 * The shared undici client: one keep-alive pool, bearer/basic auth with one refresh on 401,
 * retries with backoff and `Retry-After` for idempotent requests, zod validation of bodies.
 */
import type { Dispatcher } from "undici";
import {
  ArgumentError,
  AuthError,
  ConflictError,
  DeltaSyncError,
  errorMessage,
  isTransient,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../core/errors.js";
import { parseRetryAfter, resolveRetryPolicy, retryDelay } from "../core/retry.js";
import { sleep } from "../core/sleep.js";
import { noBackpressureAgent } from "./no-backpressure.js";
import { normalizeBaseUrl, resolveUrl } from "./origin.js";
import type {
  HttpClient,
  HttpClientOptions,
  HttpErrorResponse,
  HttpRequest,
  HttpResponse,
  QueryValue,
} from "./types.js";
import { parseJsonBody } from "./validate.js";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PROPFIND", "REPORT"]);

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * The keep-alive pool `createHttpClient` makes when given no `dispatcher`: bounded, no pipelining,
 * every timeout `timeoutMs`, never paused (see `noBackpressure`). Share one between the clients of
 * an account that talk to several hosts.
 */
export function createAgent(options: { connections?: number; timeoutMs: number }): Dispatcher {
  const { timeoutMs } = options;
  return noBackpressureAgent({
    connections: options.connections ?? 8,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: timeoutMs },
  });
}

/**
 * Creates the shared HTTP client.
 *
 * @example
 * const http = createHttpClient({ baseUrl: "https://www.googleapis.com/calendar/v3/", accessToken });
 * const { body } = await http.request({ path: "users/me/calendarList", schema: CalendarListSchema });
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const baseUrl = normalizeBaseUrl(options.baseUrl);
  const baseOrigin = new URL(baseUrl).origin;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const ownDispatcher = options.dispatcher === undefined;
  const dispatcher: Dispatcher =
    options.dispatcher ?? createAgent({ connections: options.connections, timeoutMs });
  const policy = resolveRetryPolicy({
    retries: options.retry?.retries ?? 3,
    minDelayMs: options.retry?.minDelayMs ?? 200,
    maxDelayMs: options.retry?.maxDelayMs ?? 30_000,
  });
  const wait = options.sleep ?? sleep;
  const basic = options.basicAuth
    ? `Basic ${Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString("base64")}`
    : undefined;
  const canRefresh = options.getAccessToken !== undefined;
  let closed = false;
  // Requests in flight together (read-ahead, the identity look-up, parallel scopes) that all
  // meet a 401 share one forced refresh: one in progress is joined, and a request whose token
  // predates a finished one retries with its result instead of refreshing again.
  let refreshing: Promise<string> | undefined;
  let refreshes = 0;
  let refreshedToken: string | undefined;

  function refreshToken(getAccessToken: NonNullable<HttpClientOptions["getAccessToken"]>) {
    refreshing ??= getAccessToken({ forceRefresh: true })
      .then((token) => {
        refreshes++;
        refreshedToken = token;
        return token;
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  }

  /**
   * The Authorization header, and how many forced refreshes had finished when its token was
   * issued (`since` is that count for the token a 401 refused). Without a token callback the
   * header never changes: one object, and no await per request.
   */
  type Authorization = { header?: string; secret?: string; refreshes: number };
  const { getAccessToken } = options;
  const fixedAuthorization: Authorization =
    options.accessToken !== undefined
      ? { ...bearer(options.accessToken), refreshes: 0 }
      : { header: basic, secret: options.basicAuth?.password, refreshes: 0 };

  async function authorization(
    getAccessToken: NonNullable<HttpClientOptions["getAccessToken"]>,
    forceRefresh: boolean,
    since: number,
  ): Promise<Authorization> {
    const from = refreshes;
    let token: string;
    try {
      if (!forceRefresh) token = await getAccessToken({ forceRefresh: false });
      // Another request refreshed after the refused token was issued: use its token.
      else if (refreshes > since && refreshedToken !== undefined) token = refreshedToken;
      else token = await refreshToken(getAccessToken);
    } catch (cause) {
      // Its own AuthError (a refused refresh token) says why; a transient failure of the
      // token endpoint is retried like any other.
      if (cause instanceof AuthError || cause instanceof TransientError) throw cause;
      throw new AuthError(`getAccessToken failed: ${errorMessage(cause)}`, { cause });
    }
    return { ...bearer(token), refreshes: forceRefresh ? refreshes : from };
  }

  async function send(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | Uint8Array | undefined,
    signal: AbortSignal | undefined,
    endpoint: string,
  ): Promise<RawResponse> {
    try {
      const res = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: method as Dispatcher.HttpMethod,
        headers,
        body,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text };
    } catch (cause) {
      if (signal?.aborted) throw signal.reason;
      // A name that does not exist is a typo, not an outage: fail at once. EAI_AGAIN (the
      // resolver could not answer) is transient and retried like a refused connection.
      if (errnoCode(cause) === "ENOTFOUND")
        throw new ArgumentError(`host not found: ${url.hostname}`, { cause });
      if (isTransient(cause))
        throw new TransientError(`${endpoint}: ${networkReason(cause)}`, { cause });
      throw new ProtocolError(endpoint, `request failed: ${networkReason(cause)}`, { cause });
    }
  }

  async function request<T = string>(req: HttpRequest<T>): Promise<HttpResponse<T>> {
    if (closed) throw new DeltaSyncError("HTTP client is closed");
    const method = (req.method ?? "GET").toUpperCase();
    const url = resolveUrl(req.path, baseUrl, req.endpoint ?? `${method} ${req.path}`, baseOrigin);
    appendQuery(url, req.query);
    const endpoint = req.endpoint ?? `${method} ${url.pathname}`;
    const idempotent = req.idempotent ?? IDEMPOTENT.has(method);
    const headers: Record<string, string> = { ...options.headers, ...req.headers };
    let body = req.body;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers["content-type"] ??= "application/json";
    }
    if (req.schema) headers.accept ??= "application/json";

    let refreshed = false;
    let forceRefresh = false;
    let tokenFrom = 0;
    let attempt = 0;
    for (;;) {
      const auth = getAccessToken
        ? await authorization(getAccessToken, forceRefresh, tokenFrom)
        : fixedAuthorization;
      tokenFrom = auth.refreshes;
      forceRefresh = false;
      const sent = auth.header ? { ...headers, authorization: auth.header } : headers;
      let error: Error;
      // A body that is not JSON at all is usually a cut connection (a truncated body): retried
      // like a transient failure, and reported as the ProtocolError once the retries are spent.
      let retryable = false;
      try {
        const raw = await send(method, url, sent, body, req.signal, endpoint);
        const expected = req.expect
          ? req.expect.includes(raw.status)
          : raw.status >= 200 && raw.status < 300;
        if (expected) {
          try {
            return toResponse(raw, req, url, endpoint);
          } catch (e) {
            if (!(e instanceof ProtocolError && e.cause instanceof SyntaxError)) throw e;
            error = e;
            retryable = true;
          }
        } else {
          if (raw.status === 401 && canRefresh && !refreshed) {
            refreshed = true;
            forceRefresh = true;
            continue;
          }
          error = toError(raw, method, endpoint, auth.secret);
          retryable = error instanceof TransientError;
        }
      } catch (e) {
        if (!(e instanceof TransientError)) throw e;
        error = e;
        retryable = true;
      }
      if (!retryable || !idempotent || attempt >= policy.retries) throw error;
      // A server asking for a longer pause than we allow: let the caller (orchestrator) schedule it.
      if (error instanceof TransientError && (error.retryAfterMs ?? 0) > policy.maxDelayMs)
        throw error;
      attempt++;
      await wait(retryDelay(attempt, error, policy), req.signal);
    }
  }

  function toError(raw: RawResponse, method: string, endpoint: string, secret?: string): Error {
    const retryAfterMs = parseRetryAfter(headerValue(raw.headers["retry-after"]));
    const info: HttpErrorResponse = {
      status: raw.status,
      method,
      endpoint,
      headers: raw.headers,
      text: raw.text,
      retryAfterMs,
    };
    const custom = options.classify?.(info);
    if (custom) return custom;
    return defaultError(info, secret);
  }

  return {
    baseUrl,
    request,
    async close() {
      if (closed) return;
      closed = true;
      if (ownDispatcher) await dispatcher.close();
    },
  };
}

/** The default status → error mapping (see docs/http.md). */
export function defaultError(info: HttpErrorResponse, secret?: string): Error {
  const detail = excerpt(info.text, secret);
  const message = `${info.endpoint}: HTTP ${info.status}${detail ? ` ${detail}` : ""}`;
  const { status } = info;
  if (status === 408 || status === 429 || status >= 500)
    return new TransientError(message, { status, retryAfterMs: info.retryAfterMs });
  if (status === 401 || status === 403) return new AuthError(message);
  if (status === 404 || status === 410) return new NotFoundError(message);
  if (status === 409 || status === 412) return new ConflictError(message);
  return new ProtocolError(info.endpoint, `HTTP ${status}${detail ? ` ${detail}` : ""}`);
}

function toResponse<T>(
  raw: RawResponse,
  req: HttpRequest<T>,
  url: URL,
  endpoint: string,
): HttpResponse<T> {
  let body: unknown = raw.text;
  if (raw.status >= 200 && raw.status < 300) {
    if (req.schema) body = parseJsonBody(raw.text, req.schema, endpoint);
  } else if (req.schema) {
    try {
      body = JSON.parse(raw.text);
    } catch {
      body = raw.text;
    }
  }
  return {
    status: raw.status,
    headers: raw.headers,
    body: body as T,
    text: raw.text,
    url: url.toString(),
  };
}

function appendQuery(url: URL, query: Record<string, QueryValue> | undefined): void {
  if (!query) return;
  // One URLSearchParams serialised once: each `url.searchParams.append` rewrites `url.search`.
  const params = new URLSearchParams(url.search);
  let added = false;
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    added = true;
    if (Array.isArray(value)) for (const v of value) params.append(key, String(v));
    else params.append(key, String(value));
  }
  if (added) url.search = params.toString();
}

function bearer(token: string): { header: string; secret: string } {
  return { header: `Bearer ${token}`, secret: token };
}

/** The first value of a header. */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A short, single-line, secret-free excerpt of an error body. */
function excerpt(text: string, secret?: string): string {
  let out = (isHtml(text) ? htmlTitle(text) : text).replace(/\s+/g, " ").trim();
  if (secret) out = out.split(secret).join("[redacted]");
  out = out.replace(/(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, "$1 [redacted]");
  return out.length > 200 ? `${out.slice(0, 200)}…` : out;
}

function isHtml(text: string): boolean {
  return /^\s*<(!doctype\s+html|html|head|body)\b/i.test(text);
}

/** An HTML error page (a proxy's, a login page) in one line: its title, else its first heading. */
function htmlTitle(html: string): string {
  const match =
    /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html) ?? /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(html);
  const text = (match?.[1] ?? "").replace(/<[^>]*>/g, "").trim();
  return text ? `(HTML page: ${text})` : "(HTML page)";
}

function networkReason(cause: unknown): string {
  const code = errnoCode(cause);
  const name = cause instanceof Error ? cause.name : "error";
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return "timed out";
  if (code === "UND_ERR_CONNECT_TIMEOUT") return "connect timed out";
  if (code === "EAI_AGAIN") return "DNS lookup failed temporarily (EAI_AGAIN)";
  if (code === "ECONNREFUSED") return "connection refused (ECONNREFUSED)";
  return code !== undefined ? `${name} (${code})` : name;
}

/** The first `code` on an error or its causes (undici may wrap the socket's error). */
function errnoCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
