import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliSource } from "../../adapters/aurinko/cli.js";
import { loadCliSource } from "../../src/cli/registry.js";
import { ArgumentError, AuthError } from "../../src/core/errors.js";
import { AurinkoEmulator } from "./emulator.js";
import { message, recorder } from "./helpers.js";

let emulator: AurinkoEmulator;
beforeAll(async () => {
  emulator = await AurinkoEmulator.start();
  const model = emulator.account("cli-token");
  model.addCalendar("primary");
  model.addCalendar("team@example.com");
  model.insert("calendars/team@example.com", { subject: "standup" });
  model.addTasklist("todo");
  model.insert("tasklists/todo", { title: "t" });
  model.insert("contacts", { name: "ann" });
  model.insert("email", message("hi"));
});
afterAll(async () => {
  await emulator.close();
});

const env = () => ({
  DELTASYNC_AURINKO_TOKEN: "cli-token",
  DELTASYNC_AURINKO_BASE_URL: emulator.url,
});

describe("aurinko: CLI source", () => {
  it("is registered for aurinko: URLs", async () => {
    expect((await loadCliSource("aurinko")).schemes).toEqual(["aurinko"]);
  });

  it("opens every scope and syncs it through the emulator", async () => {
    for (const [url, size] of [
      ["aurinko:email", 1],
      ["aurinko:calendar/team%40example.com", 1],
      ["aurinko:calendar/primary", 0],
      ["aurinko:calendars", 2],
      ["aurinko:contacts", 1],
      ["aurinko:tasks/todo", 1],
      ["aurinko:tasklists", 1],
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
    await expect(cliSource.open(new URL("aurinko:email"), { env: {} })).rejects.toBeInstanceOf(
      AuthError,
    );
    for (const bad of ["aurinko:calendar", "aurinko:mail", "aurinko:tasks/", "aurinko:email/x"]) {
      await expect(cliSource.open(new URL(bad), { env: env() })).rejects.toBeInstanceOf(
        ArgumentError,
      );
    }
    await expect(
      cliSource.open(new URL("aurinko:email"), {
        env: { DELTASYNC_AURINKO_TOKEN: "x", DELTASYNC_AURINKO_BASE_URL: "not a url" },
      }),
    ).rejects.toBeInstanceOf(ArgumentError);
  });
});
