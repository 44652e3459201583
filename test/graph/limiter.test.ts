/**
 * The per-mailbox request limiter: FIFO past the limit, aborts of waiting requests, and one abort
 * listener per signal however long the queue (it used to add one per waiting request, so a
 * few concurrent scopes on one signal made Node print MaxListenersExceededWarning).
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { limitConcurrency } from "../../adapters/graph/graph-limiter.js";
import type { HttpClient, HttpRequest, HttpResponse } from "../../src/http/index.js";

/** A client whose requests finish when the test says so, in the order it says. */
function gate() {
  const open: { path: string; done: () => void }[] = [];
  const started: string[] = [];
  const http: HttpClient = {
    baseUrl: "http://x/",
    close: async () => {},
    request<T>(req: HttpRequest<T>): Promise<HttpResponse<T>> {
      started.push(req.path);
      return new Promise((resolve) => {
        open.push({
          path: req.path,
          done: () => resolve({ status: 200, headers: {}, body: req.path as T, url: req.path }),
        });
      });
    },
  };
  const finishOne = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    open.shift()?.done();
    // Let the limiter hand the place to the next waiter, which then starts its request.
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { http, open, started, finishOne };
}

describe("limitConcurrency", () => {
  it("keeps one abort listener per signal however many requests wait, none once they ran", async () => {
    const g = gate();
    const limited = limitConcurrency(g.http, 2);
    const signal = new AbortController().signal;
    const all = Array.from({ length: 50 }, (_, i) => limited.request({ path: `r${i}`, signal }));
    expect(limited.active()).toBe(2);
    expect(getEventListeners(signal, "abort").length).toBe(1);
    for (let i = 0; i < 50; i++) await g.finishOne();
    expect(await Promise.all(all)).toHaveLength(50);
    expect(g.started).toEqual(Array.from({ length: 50 }, (_, i) => `r${i}`));
    expect(getEventListeners(signal, "abort").length).toBe(0);
    expect(limited.active()).toBe(0);
  });

  it("an abort rejects that signal's waiting requests only and frees their places", async () => {
    const g = gate();
    const limited = limitConcurrency(g.http, 1);
    const a = new AbortController();
    const b = new AbortController();
    const first = limited.request({ path: "first", signal: b.signal });
    const waitingA = [1, 2, 3].map((i) => limited.request({ path: `a${i}`, signal: a.signal }));
    const waitingB = limited.request({ path: "b", signal: b.signal });
    expect(getEventListeners(a.signal, "abort").length).toBe(1);
    a.abort(new Error("stop a"));
    for (const p of waitingA) await expect(p).rejects.toThrow("stop a");
    expect(getEventListeners(a.signal, "abort").length).toBe(0);
    await g.finishOne();
    await g.finishOne();
    expect(await first).toMatchObject({ body: "first" });
    expect(await waitingB).toMatchObject({ body: "b" });
    expect(g.started).toEqual(["first", "b"]);
    expect(getEventListeners(b.signal, "abort").length).toBe(0);
    // A request with a signal already aborted never takes a place.
    await expect(limited.request({ path: "late", signal: a.signal })).rejects.toThrow("stop a");
    expect(limited.active()).toBe(0);
  });
});
