import type { Dispatcher } from "undici";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noBackpressure } from "../../src/http/no-backpressure.js";
import { startServer, type TestServer } from "./server.js";

/**
 * The client's dispatcher must never pause a response (undici 7 crashes when a server closes
 * a connection whose body is paused). A handler that asks to pause after every chunk and never
 * resumes must still see the whole body: with a plain Agent it would wait forever.
 */
const SIZE = 4 * 1024 * 1024;

let server: TestServer;
beforeAll(async () => {
  server = await startServer((_req, res) => {
    res.setHeader("connection", "close"); // as Radicale's HTTP/1.0 answers
    res.end(Buffer.alloc(SIZE, 120));
  });
});
afterAll(() => server.close());

function dispatchOnce(
  dispatcher: Dispatcher,
  handler: (done: (bytes: number) => void, fail: (e: Error) => void) => Dispatcher.DispatchHandler,
): Promise<number> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    dispatcher.dispatch({ origin: url.origin, path: "/", method: "GET" }, handler(resolve, reject));
  });
}

describe("noBackpressure", () => {
  it("ignores a legacy handler's `false` (pause) and delivers the whole body", async () => {
    const dispatcher = noBackpressure(new Agent());
    let pausesAsked = 0;
    const bytes = await dispatchOnce(dispatcher, (done, fail) => {
      let n = 0;
      return {
        onConnect() {},
        onHeaders: () => false,
        onData(chunk: Buffer) {
          n += chunk.length;
          pausesAsked++;
          return false;
        },
        onComplete: () => done(n),
        onError: fail,
      };
    });
    expect(bytes).toBe(SIZE);
    expect(pausesAsked).toBeGreaterThan(1);
    await dispatcher.close();
  });

  it("gives a new-style handler a controller whose pause is a no-op", async () => {
    const dispatcher = noBackpressure(new Agent());
    let sawPaused = false;
    const bytes = await dispatchOnce(dispatcher, (done, fail) => {
      let n = 0;
      return {
        onRequestStart() {},
        onResponseStart(controller) {
          controller.pause();
        },
        onResponseData(controller, chunk) {
          n += chunk.length;
          controller.pause();
          sawPaused ||= controller.paused;
        },
        onResponseEnd: () => done(n),
        onResponseError: (_c, e) => fail(e),
      };
    });
    expect(bytes).toBe(SIZE);
    expect(sawPaused).toBe(false);
    await dispatcher.close();
  });

  it("serves request() and passes aborts and close through", async () => {
    const agent = new Agent();
    const dispatcher = noBackpressure(agent);
    const url = new URL(server.url);
    const res = await dispatcher.request({ origin: url.origin, path: "/", method: "GET" });
    expect((await res.body.arrayBuffer()).byteLength).toBe(SIZE);

    const controller = new AbortController();
    const aborted = dispatcher.request({
      origin: url.origin,
      path: "/",
      method: "GET",
      signal: controller.signal,
    });
    controller.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");

    await dispatcher.close();
    expect(agent.closed).toBe(true);
  });
});
