import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
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
