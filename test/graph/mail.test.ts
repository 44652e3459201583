import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { StateError } from "../../src/core/errors.js";
import { GraphEmulator } from "./emulator.js";
import { account, recorder } from "./helpers.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => emulator.close());
beforeEach(() => {
  emulator.reset();
  emulator.options = { maxPageSize: 2 };
});

describe("messages", () => {
  it("a move between folders is a move in mail(), not a loss, whichever folder is read first", async () => {
    const m = emulator.model;
    const a = m.receive("inbox", "to archive");
    const b = m.receive("archive", "to inbox");
    const graph = account(emulator);
    const r = recorder();
    const state = await graph.mail().sync(r.importer);
    m.moveMessage(a, "archive");
    m.moveMessage(b, "inbox");
    r.log.length = 0;
    await graph.mail().sync(r.importer, state);
    expect(r.items.get(a)?.parentKey).toBe("archive");
    expect(r.items.get(b)?.parentKey).toBe("inbox");
    expect(r.log).toContain(`moved ${a} inbox->archive`);
    await graph.close();
  });
});

describe("server-wide mail", () => {
  it("a sync aborted while listing folders does not fail the next one with its abort reason", async () => {
    emulator.model.receive("inbox", "x");
    const graph = account(emulator);
    await graph.folder("inbox").sync({}); // the account knows its identity: the folder list is next
    emulator.options.latencyMs = 30;
    const controller = new AbortController();
    const first = graph.mail().sync({}, undefined, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(new Error("first aborted"));
    const second = graph.mail().sync({});
    await expect(first).rejects.toThrow("first aborted");
    await expect(second).resolves.toMatch(/^ds1\./);
    await graph.close();
  });
});

describe("identity", () => {
  it("a sync aborted while asking who the account is does not fail the next one", async () => {
    emulator.options.latencyMs = 30;
    const graph = account(emulator);
    const controller = new AbortController();
    const first = graph.folder("inbox").sync({}, undefined, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(new Error("first aborted"));
    const second = graph.folder("archive").sync({});
    await expect(first).rejects.toThrow("first aborted");
    await expect(second).resolves.toMatch(/^ds1\./);
    await graph.close();
  });

  it("a state of another mailbox on the same server is a StateError before any change", async () => {
    emulator.model.receive("inbox", "x");
    const other = account(emulator, { user: "someone-else" });
    const state = await other.folder("inbox").sync({});
    const graph = account(emulator);
    let calls = 0;
    await expect(
      graph.folder("inbox").sync({ update: () => void calls++ }, state),
    ).rejects.toBeInstanceOf(StateError);
    expect(calls).toBe(0);
    await other.close();
    await graph.close();
  });
});
