/**
 * The webhook plumbing shared by push receivers (Google Calendar channels, Gmail's Pub/Sub push,
 * Microsoft Graph subscriptions): one handler served as a Node `(req, res)` handler and as a
 * fetch-style handler, a body reader with a size cap, and constant-time secret comparison.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ProtocolError } from "../core/errors.js";

/** A webhook, as a Node `(req, res)` handler and as a fetch-style handler. */
export interface WebhookReceiver {
  /** For `http.createServer(handler)`, Express, Fastify's raw handler… */
  node(req: IncomingMessage, res: ServerResponse): void;
  /** For Hono, Bun, Deno, Cloudflare-style runtimes. */
  fetch(request: Request): Promise<Response>;
}

/** What a verification hook sees of a push request (enough to check an `Authorization` JWT). */
export interface PushRequest {
  method: string;
  /** The request URL; behind a Node handler it is rebuilt from `Host` and the request path. */
  url: URL;
  headers: Headers;
}

/** A request as a webhook handler sees it, whichever style served it. */
export interface WebhookRequest extends PushRequest {
  /** The body, read once; rejects with `PayloadTooLargeError` past the receiver's cap. */
  body(): Promise<Buffer>;
}

/** A body over the receiver's cap (answered 413). */
export class PayloadTooLargeError extends ProtocolError {
  constructor(endpoint: string, maxBytes: number) {
    super(endpoint, `request body larger than ${maxBytes} bytes`);
  }
}

export interface ServeOptions {
  /** The name used in errors, e.g. `gmail.push`. */
  endpoint: string;
  /** Bodies larger than this are refused with 413. */
  maxBodyBytes: number;
  /** Sees what the handler threw (the request is answered 413 or 500, never crashes the server). */
  onError?: (error: unknown) => void;
}

/** An answer with a body (Graph's validation handshake echoes a token as `text/plain`). */
export interface WebhookAnswer {
  status: number;
  body: string;
  contentType: string;
}

/**
 * Serves `handle` in both handler styles. It resolves with the HTTP status to answer, or with a
 * `WebhookAnswer` when the answer needs a body.
 */
export function serveWebhook(
  handle: (request: WebhookRequest) => number | WebhookAnswer | Promise<number | WebhookAnswer>,
  options: ServeOptions,
): WebhookReceiver {
  const run = async (request: () => WebhookRequest): Promise<WebhookAnswer> => {
    try {
      const answer = await handle(request());
      return typeof answer === "number" ? { status: answer, body: "", contentType: "" } : answer;
    } catch (error) {
      options.onError?.(error);
      return {
        status: error instanceof PayloadTooLargeError ? 413 : 500,
        body: "",
        contentType: "",
      };
    }
  };
  return {
    node(req, res) {
      let read = false;
      const request = (): WebhookRequest => ({
        method: req.method ?? "",
        url: nodeUrl(req),
        headers: nodeHeaders(req),
        body: () => {
          read = true;
          return readNodeBody(req, options);
        },
      });
      void run(request).then(({ status, body, contentType }) => {
        // Drain what was not read so the connection can be reused; past the cap, close it instead.
        if (status === 413) res.setHeader("connection", "close");
        if (!read || status === 413) req.resume();
        res.statusCode = status;
        if (contentType) res.setHeader("content-type", contentType);
        res.end(body);
      });
    },
    async fetch(request) {
      let read = false;
      const { status, body, contentType } = await run(() => ({
        method: request.method,
        url: new URL(request.url),
        headers: request.headers,
        body: () => {
          read = true;
          return readFetchBody(request, options);
        },
      }));
      if (!read || status === 413) await request.body?.cancel().catch(() => undefined);
      return new Response(body || null, {
        status,
        headers: contentType ? { "content-type": contentType } : undefined,
      });
    },
  };
}

function nodeUrl(req: IncomingMessage): URL {
  const path = req.url ?? "/";
  try {
    return new URL(path, `http://${req.headers.host ?? "localhost"}`);
  } catch {
    return new URL(path, "http://localhost");
  }
}

function nodeHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

function declaredTooLarge(length: string | null | undefined, maxBytes: number): boolean {
  return length != null && Number(length) > maxBytes;
}

function readNodeBody(req: IncomingMessage, options: ServeOptions): Promise<Buffer> {
  const { endpoint, maxBodyBytes } = options;
  if (declaredTooLarge(req.headers["content-length"], maxBodyBytes))
    return Promise.reject(new PayloadTooLargeError(endpoint, maxBodyBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onFail);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        done();
        reject(new PayloadTooLargeError(endpoint, maxBodyBytes));
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onFail = (error: Error) => {
      done();
      reject(error);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onFail);
  });
}

async function readFetchBody(request: Request, options: ServeOptions): Promise<Buffer> {
  const { endpoint, maxBodyBytes } = options;
  if (declaredTooLarge(request.headers.get("content-length"), maxBodyBytes))
    throw new PayloadTooLargeError(endpoint, maxBodyBytes);
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks);
    size += value.byteLength;
    if (size > maxBodyBytes) {
      await reader.cancel().catch(() => undefined);
      throw new PayloadTooLargeError(endpoint, maxBodyBytes);
    }
    chunks.push(value);
  }
}

/** The SHA-256 digest a secret is kept as (so comparisons never depend on its length). */
export function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** Compares digests so neither the length nor the content of the secret leaks through timing. */
export function safeEqual(expected: Buffer, given: string | null | undefined): boolean {
  return timingSafeEqual(expected, digest(given ?? ""));
}
