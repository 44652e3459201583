/**
 * A sink that throws never kills the process (issue 10, item 8).
 */
import { describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import type { Notification } from "../../src/core/types.js";

function inbox() {
  const server = createMemoryServer();
  return server.createStore("alice").createFolder({ name: "Inbox", kind: "mail" });
}

describe("sink errors are contained", () => {
  it("onError gets what a sink threw or rejected with; the stream and other sinks go on", async () => {
    const folder = inbox();
    const errors: [unknown, Notification | undefined][] = [];
    const good: string[] = [];
    let calls = 0;
    const bad = folder.subscribe(
      async () => {
        calls++;
        if (calls === 1) throw new Error("sync throw");
        if (calls === 2) return Promise.reject(new Error("async reject"));
      },
      undefined,
      { onError: (e, n) => void errors.push([e, n]) },
    );
    const other = folder.subscribe((n) => void good.push(n.object.sourcekey));
    const a = folder.createItem({ subject: "a" });
    const b = folder.createItem({ subject: "b" });
    const c = folder.createItem({ subject: "c" });
    await new Promise((r) => setTimeout(r, 10));
    expect(errors.map(([e]) => (e as Error).message)).toEqual(["sync throw", "async reject"]);
    expect(errors[0]?.[1]?.object.sourcekey).toBe(a);
    expect(calls).toBe(3);
    expect(good).toEqual([a, b, c]);
    bad.unsubscribe();
    other.unsubscribe();
  });

  it("by default a failing sink is a process warning, never an uncaught exception", async () => {
    const folder = inbox();
    const warnings: Error[] = [];
    const uncaught: unknown[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on("warning", onWarning);
    process.on("uncaughtException", onUncaught);
    try {
      const sub = folder.subscribe(() => {
        throw new Error("boom");
      });
      folder.createItem({ subject: "a" });
      await new Promise((r) => setTimeout(r, 20));
      sub.unsubscribe();
    } finally {
      process.off("warning", onWarning);
      process.off("uncaughtException", onUncaught);
    }
    expect(uncaught).toEqual([]);
    expect(warnings.some((w) => (w as { code?: string }).code === "DELTASYNC_SINK_ERROR")).toBe(
      true,
    );
  });

  it("an onError that throws is contained too", async () => {
    const folder = inbox();
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    const onWarning = () => {};
    process.on("uncaughtException", onUncaught);
    process.on("warning", onWarning);
    try {
      const sub = folder.subscribe(
        () => {
          throw new Error("boom");
        },
        undefined,
        {
          onError: () => {
            throw new Error("handler broke");
          },
        },
      );
      folder.createItem({ subject: "a" });
      await new Promise((r) => setTimeout(r, 20));
      sub.unsubscribe();
    } finally {
      process.off("uncaughtException", onUncaught);
      process.off("warning", onWarning);
    }
    expect(uncaught).toEqual([]);
  });
});
