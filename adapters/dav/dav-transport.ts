/**
 * The few HTTP calls WebDAV needs, over the shared client (src/http): PROPFIND, REPORT, GET, PUT,
 * DELETE, each returning the status and text. Status → error mapping is the shared one, plus the
 * RFC 6578 §3.2 precondition: any 4xx naming `valid-sync-token` is a `StateInvalidError`.
 */

import { StateInvalidError } from "../../src/core/errors.js";
import { createHttpClient, type HttpClient, type HttpClientOptions } from "../../src/http/index.js";
import { type MultiStatus, parseMultistatus } from "./dav-multistatus.js";

export interface DavRequest {
  method: "PROPFIND" | "REPORT" | "GET" | "PUT" | "DELETE" | "MKCALENDAR" | "MKCOL";
  /** An href (absolute path) or absolute URL on the server's origin. */
  href: string;
  depth?: "0" | "1";
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Statuses returned rather than thrown (default: 2xx). */
  expect?: number[];
  signal?: AbortSignal;
}

export interface DavReply {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  /** The URL that answered, for error messages. */
  url: string;
}

export interface DavTransport {
  /** The server origin with a trailing slash, e.g. `https://dav.example.com/`. */
  readonly origin: string;
  send(req: DavRequest): Promise<DavReply>;
  /** Sends a PROPFIND/REPORT and parses the 207 body. */
  multistatus(req: DavRequest): Promise<MultiStatus & { url: string }>;
  close(): Promise<void>;
}

export type DavTransportOptions = Omit<HttpClientOptions, "baseUrl" | "classify" | "dispatcher">;

export function createDavTransport(baseUrl: string, options: DavTransportOptions): DavTransport {
  const origin = `${new URL(baseUrl).origin}/`;
  const http: HttpClient = createHttpClient({
    ...options,
    baseUrl: origin,
    classify(info) {
      if (info.status >= 400 && info.status < 500 && info.text.includes("valid-sync-token")) {
        return new StateInvalidError(
          `${info.endpoint}: HTTP ${info.status} valid-sync-token: the server no longer accepts the sync token; a full sync is needed`,
        );
      }
      return undefined;
    },
  });

  async function send(req: DavRequest): Promise<DavReply> {
    const headers: Record<string, string> = { ...req.headers };
    if (req.depth !== undefined) headers.depth = req.depth;
    if (req.body !== undefined) {
      headers["content-type"] = req.contentType ?? "application/xml; charset=utf-8";
    }
    const res = await http.request<string>({
      method: req.method,
      path: req.href,
      headers,
      body: req.body,
      expect: req.expect,
      signal: req.signal,
      endpoint: `${req.method} ${new URL(req.href, origin).toString()}`,
    });
    return { status: res.status, text: res.text ?? "", headers: res.headers, url: res.url };
  }

  return {
    origin,
    send,
    async multistatus(req) {
      const reply = await send({ ...req, expect: req.expect ?? [207] });
      return { ...parseMultistatus(reply.text, `${req.method} ${reply.url}`), url: reply.url };
    },
    async close() {
      await http.close();
    },
  };
}

/** The header's first value. */
export function header(reply: DavReply, name: string): string | undefined {
  const v = reply.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
