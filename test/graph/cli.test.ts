import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliSource } from "../../adapters/graph/cli.js";
import { loadCliSource } from "../../src/cli/registry.js";
import { ArgumentError, AuthError } from "../../src/core/errors.js";
import { GraphEmulator } from "./emulator.js";
import { recorder } from "./helpers.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start({ tokens: ["cli-token"] });
  const m = emulator.model;
  m.receive("inbox", "hi");
  m.receive("archive", "old");
  m.addEvent("primary", "standup", 1);
  m.addContact("ann");
});
afterAll(async () => emulator.close());

const env = () => ({
  DELTASYNC_GRAPH_TOKEN: "cli-token",
  DELTASYNC_GRAPH_BASE_URL: emulator.baseUrl,
});

describe("graph: CLI source", () => {
  it("is registered for graph: URLs", async () => {
    expect((await loadCliSource("graph")).schemes).toEqual(["graph"]);
  });

  it("opens every scope and syncs it through the emulator", async () => {
    for (const [url, size] of [
      ["graph:mail", 2],
      ["graph:folder/inbox", 1],
      ["graph:folders", 2],
      ["graph:calendar/primary", 1],
      ["graph:calendars", 1],
      ["graph:contacts", 1],
      ["graph:contact-folders", 0],
    ] as const) {
      const opened = await cliSource.open(new URL(url), { env: env() });
      const r = recorder();
      await opened.syncable.sync(r.importer);
      expect(r.items.size, url).toBe(size);
      expect(opened.key).not.toContain("cli-token");
      await opened.close();
    }
  });

  it("requires the token and rejects malformed URLs", async () => {
    await expect(cliSource.open(new URL("graph:mail"), { env: {} })).rejects.toBeInstanceOf(
      AuthError,
    );
    for (const bad of ["graph:folder", "graph:calendar", "graph:gmail", "graph:mail/x"]) {
      await expect(cliSource.open(new URL(bad), { env: env() })).rejects.toBeInstanceOf(
        ArgumentError,
      );
    }
  });
});
