/**
 * An HTTP proxy in front of a real DAV server that can answer chosen requests itself: a 500 for
 * REPORTs "for a while", or the RFC 6578 invalid-token answer once (the kit's `injectFault`).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type Fault = (
  req: IncomingMessage,
  body: string,
) => { status: number; body: string } | undefined;

export interface FaultProxy {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** Answers matching requests itself while set; return undefined to forward. */
  fault: Fault | undefined;
  /** Requests seen, as `METHOD path`. */
  log: string[];
  close(): Promise<void>;
}

const HOP = new Set(["host", "connection", "content-length", "transfer-encoding", "keep-alive"]);

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const proxy: FaultProxy = {
    url: "",
    fault: undefined,
    log: [],
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      proxy.log.push(`${req.method} ${req.url}`);
      const injected = proxy.fault?.(req, body);
      if (injected) {
        res.writeHead(injected.status, { "content-type": "text/plain" });
        res.end(injected.body);
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (!HOP.has(k) && typeof v === "string") headers[k] = v;
      }
      fetch(new URL(req.url ?? "/", target), {
        method: req.method,
        headers,
        body: chunks.length ? body : undefined,
        redirect: "manual",
      })
        .then(async (r) => {
          const text = Buffer.from(await r.arrayBuffer());
          const out: Record<string, string> = {};
          r.headers.forEach((v, k) => {
            if (!HOP.has(k) && k !== "content-encoding") out[k] = v;
          });
          res.writeHead(r.status, out);
          res.end(text);
        })
        .catch((error: unknown) => {
          res.writeHead(502);
          res.end(String(error));
        });
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return proxy;
}

/** The RFC 6578 §3.2 answer to a token the server no longer accepts. */
export const INVALID_TOKEN = {
  status: 403,
  body: '<?xml version="1.0" encoding="utf-8"?><d:error xmlns:d="DAV:"><d:valid-sync-token/></d:error>',
};

/** A server error with nothing in it that names the token. */
export const SERVER_ERROR = { status: 500, body: "500 Internal Server Error" };
