import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  AuthError,
  ConflictError,
  NotFoundError,
  ProtocolError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import { createHttpClient, type HttpClientOptions } from "../../src/http/index.js";
import { json, startServer, type TestServer } from "./server.js";

let server: TestServer;
let delays: number[];

beforeEach(async () => {
  server = await startServer();
  delays = [];
});
afterEach(async () => {
  await server.close();
});

function client(extra: Partial<HttpClientOptions> = {}) {
  return createHttpClient({
    baseUrl: `${server.url}/api/v1`,
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 5_000 },
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...extra,
  });
}

const Item = z.object({ items: z.array(z.object({ id: z.string(), status: z.string() })) });

describe("createHttpClient", () => {
  it("resolves paths against baseUrl, sends the query and returns text without a schema", async () => {
    server.handle((_q, r) => r.end("hello"));
    const http = client({ headers: { "x-app": "a" } });
    const res = await http.request({
      path: "events",
      query: { a: 1, b: undefined, c: ["x", "y"] },
    });
    expect(res.body).toBe("hello");
    expect(res.status).toBe(200);
    expect(server.seen[0]?.url).toBe("/api/v1/events?a=1&c=x&c=y");
    expect(server.seen[0]?.headers["x-app"]).toBe("a");
    await http.request({ path: "/root" });
    expect(server.seen[1]?.url).toBe("/root");
    await http.close();
    await http.close();
  });

  it("validates JSON bodies with the schema", async () => {
    server.handle((_q, r) => json(r, 200, { items: [{ id: "a", status: "confirmed" }] }));
    const http = client();
    const res = await http.request({ path: "events", schema: Item });
    expect(res.body.items[0]?.id).toBe("a");
    await http.close();
  });

  it("names the endpoint and the field path on a schema error", async () => {
    server.handle((_q, r) => json(r, 200, { items: [{ id: "a", status: "x" }, { id: 7 }] }));
    const http = client();
    const err = await http
      .request({ path: "events", schema: Item, endpoint: "calendar.events.list" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).endpoint).toBe("calendar.events.list");
    expect((err as Error).message).toContain("items[1].id");
    await http.close();
  });

  it("retries a truncated JSON body (a cut connection) and succeeds", async () => {
    let n = 0;
    server.handle((_q, r) =>
      ++n === 1 ? r.end('{"items": [tru') : json(r, 200, { items: [{ id: "a", status: "x" }] }),
    );
    const http = client();
    const res = await http.request({ path: "events", schema: Item });
    expect(res.body.items[0]?.id).toBe("a");
    expect(server.seen).toHaveLength(2);
    await http.close();
  });

  it("turns a body that stays malformed into a ProtocolError once the retries are spent", async () => {
    server.handle((_q, r) => r.end('{"items": [tru'));
    const http = client();
    const err = await http.request({ path: "events", schema: Item }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toContain("not valid JSON");
    expect(server.seen).toHaveLength(4);
    // Never for a request that is not idempotent, nor for a body that is JSON but invalid.
    const post = await http
      .request({ method: "POST", path: "events", schema: Item })
      .catch((e: unknown) => e);
    expect(post).toBeInstanceOf(ProtocolError);
    expect(server.seen).toHaveLength(5);
    server.handle((_q, r) => json(r, 200, { items: [{ id: 1 }] }));
    await expect(http.request({ path: "events", schema: Item })).rejects.toBeInstanceOf(
      ProtocolError,
    );
    expect(server.seen).toHaveLength(6);
    await http.close();
  });

  it("retries 5xx for idempotent requests with backoff, then succeeds", async () => {
    let n = 0;
    server.handle((_q, r) => (++n < 3 ? json(r, 503, { error: "busy" }) : r.end("done")));
    const http = client();
    const res = await http.request({ path: "x" });
    expect(res.body).toBe("done");
    expect(server.seen).toHaveLength(3);
    expect(delays).toHaveLength(2);
    await http.close();
  });

  it("gives up after the retry limit with a TransientError carrying the status", async () => {
    server.handle((_q, r) => json(r, 500, {}));
    const http = client();
    const err = await http.request({ path: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).status).toBe(500);
    expect(server.seen).toHaveLength(4);
    await http.close();
  });

  it("does not retry a non-idempotent POST", async () => {
    server.handle((_q, r) => json(r, 502, {}));
    const http = client();
    const err = await http.request({ method: "POST", path: "x", json: { a: 1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]?.headers["content-type"]).toBe("application/json");
    expect(server.seen[0]?.body).toBe('{"a":1}');
    await http.close();
  });

  it("retries a POST marked idempotent", async () => {
    let n = 0;
    server.handle((_q, r) => (++n < 2 ? json(r, 502, {}) : r.end("ok")));
    const http = client();
    const res = await http.request({ method: "POST", path: "x", idempotent: true });
    expect(res.body).toBe("ok");
    await http.close();
  });

  it("honours Retry-After in seconds on 429", async () => {
    let n = 0;
    server.handle((_q, r) => (++n < 2 ? json(r, 429, {}, { "retry-after": "2" }) : r.end("ok")));
    const http = client();
    await http.request({ path: "x" });
    expect(delays).toEqual([2000]);
    await http.close();
  });

  it("honours Retry-After as an HTTP-date", async () => {
    let n = 0;
    server.handle((_q, r) =>
      ++n < 2
        ? json(r, 503, {}, { "retry-after": new Date(Date.now() + 3000).toUTCString() })
        : r.end("ok"),
    );
    const http = client();
    await http.request({ path: "x" });
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThan(1000);
    expect(delays[0]).toBeLessThanOrEqual(3000);
    await http.close();
  });

  it("does not wait longer than maxDelayMs: throws with retryAfterMs instead", async () => {
    server.handle((_q, r) => json(r, 429, {}, { "retry-after": "3600" }));
    const http = client();
    const err = await http.request({ path: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(3_600_000);
    expect(server.seen).toHaveLength(1);
    await http.close();
  });

  it("retries connection resets", async () => {
    let n = 0;
    server.handle((q, r) => (++n < 2 ? q.socket.destroy() : r.end("ok")));
    const http = client();
    const res = await http.request({ path: "x" });
    expect(res.body).toBe("ok");
    expect(n).toBe(2);
    await http.close();
  });

  it("reports a connection reset as TransientError when retries run out", async () => {
    server.handle((q) => q.socket.destroy());
    const http = client({ retry: { retries: 0 } });
    const err = await http.request({ path: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    await http.close();
  });

  it("times out a silent server with a TransientError", async () => {
    server.handle(() => {});
    const http = client({ timeoutMs: 200, retry: { retries: 1, minDelayMs: 1 } });
    const err = await http.request({ path: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain("timed out");
    expect(server.seen).toHaveLength(2);
    await http.close();
  });

  it("sends a static bearer token and maps 401 to AuthError without leaking it", async () => {
    server.handle((q, r) => json(r, 401, { error: `bad token ${q.headers.authorization}` }));
    const http = client({ accessToken: "s3cret-token" });
    const err = await http.request({ path: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(String((err as Error).message)).not.toContain("s3cret-token");
    expect(JSON.stringify(err)).not.toContain("s3cret-token");
    expect(server.seen[0]?.headers.authorization).toBe("Bearer s3cret-token");
    await http.close();
  });

  it("refreshes the token once on 401, then succeeds", async () => {
    const calls: boolean[] = [];
    server.handle((q, r) =>
      q.headers.authorization === "Bearer fresh" ? r.end("ok") : json(r, 401, {}),
    );
    const http = client({
      getAccessToken: async ({ forceRefresh }) => {
        calls.push(forceRefresh);
        return forceRefresh ? "fresh" : "stale";
      },
    });
    const res = await http.request({ path: "x" });
    expect(res.body).toBe("ok");
    expect(calls).toEqual([false, true]);
    await http.close();
  });

  it("requests refused together share one refresh (in progress or just finished)", async () => {
    const calls: boolean[] = [];
    let refused = 0;
    server.handle((q, r) => {
      if (q.headers.authorization === "Bearer fresh") return void r.end("ok");
      // The last stale request is refused only after the refresh (30 ms) has finished.
      const delay = ++refused === 4 ? 80 : 0;
      setTimeout(() => json(r, 401, {}), delay);
    });
    const http = client({
      getAccessToken: async ({ forceRefresh }) => {
        calls.push(forceRefresh);
        if (!forceRefresh) return "stale";
        await new Promise((r) => setTimeout(r, 30));
        return "fresh";
      },
    });
    const all = await Promise.all(Array.from({ length: 4 }, () => http.request({ path: "x" })));
    expect(all.map((r) => r.body)).toEqual(["ok", "ok", "ok", "ok"]);
    expect(calls.filter((forced) => !forced)).toHaveLength(4);
    expect(calls.filter((forced) => forced)).toHaveLength(1);
    await http.close();
  });

  it("throws AuthError when the refreshed token is also refused", async () => {
    const calls: boolean[] = [];
    server.handle((_q, r) => json(r, 401, {}));
    const http = client({
      getAccessToken: async ({ forceRefresh }) => {
        calls.push(forceRefresh);
        return "token";
      },
    });
    const err = await http.request({ path: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(calls).toEqual([false, true]);
    expect(server.seen).toHaveLength(2);
    await http.close();
  });

  it("sends basic auth", async () => {
    server.handle((_q, r) => r.end("ok"));
    const http = client({ basicAuth: { username: "u", password: "p" } });
    await http.request({ path: "x" });
    expect(server.seen[0]?.headers.authorization).toBe(`Basic ${btoa("u:p")}`);
    await http.close();
  });

  it("refuses a paging link on another origin and follows one on the same origin", async () => {
    server.handle((_q, r) => r.end("ok"));
    const http = client({ accessToken: "t" });
    const err = await http
      .request({ path: "https://evil.example.com/api/v1/events?page=2" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toContain("leaves the origin");
    const other = server.url.replace("127.0.0.1", "localhost");
    await expect(http.request({ path: `${other}/api/v1/x` })).rejects.toBeInstanceOf(ProtocolError);
    expect(server.seen).toHaveLength(0);
    const res = await http.request({ path: `${server.url}/api/v1/events?page=2` });
    expect(res.body).toBe("ok");
    expect(server.seen[0]?.url).toBe("/api/v1/events?page=2");
    await http.close();
  });

  it("returns expected non-2xx statuses instead of throwing", async () => {
    server.handle((_q, r) => json(r, 410, { error: { code: 410 } }));
    const http = client();
    const res = await http.request({ path: "x", expect: [200, 410], schema: Item });
    expect(res.status).toBe(410);
    expect(res.body).toEqual({ error: { code: 410 } });
    await http.close();
  });

  it("maps statuses by default and lets classify override", async () => {
    const http = client({ retry: { retries: 0 } });
    for (const [status, type] of [
      [404, NotFoundError],
      [412, ConflictError],
      [403, AuthError],
      [400, ProtocolError],
      [408, TransientError],
    ] as const) {
      server.handle((_q, r) => json(r, status, {}));
      await expect(http.request({ path: "x" })).rejects.toBeInstanceOf(type);
    }
    await http.close();
    const custom = client({
      classify: (r) => (r.status === 410 ? new StateInvalidError(r.endpoint) : undefined),
    });
    server.handle((_q, r) => json(r, 410, {}));
    await expect(custom.request({ path: "x" })).rejects.toBeInstanceOf(StateInvalidError);
    await custom.close();
  });

  it("stops on abort without retrying", async () => {
    server.handle(() => {});
    const http = client();
    const ctrl = new AbortController();
    const p = http.request({ path: "x", signal: ctrl.signal });
    setTimeout(() => ctrl.abort(new Error("stop")), 50);
    await expect(p).rejects.toThrow("stop");
    await http.close();
  });
});
