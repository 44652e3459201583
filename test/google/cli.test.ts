import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliSource } from "../../adapters/google/cli.js";
import { ArgumentError, AuthError } from "../../src/core/errors.js";
import { GoogleEmulator } from "./emulator.js";
import { recorder } from "./helpers.js";

let emulator: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start({ tokens: ["cli-token"] });
  emulator.model.addCalendar("primary");
  emulator.model.addCalendar("team@group.calendar.google.com");
  emulator.model.insertEvent("team@group.calendar.google.com", { summary: "standup", day: 1 });
  emulator.model.addPerson("ann");
  emulator.model.receiveMessage("hi");
});
afterAll(async () => {
  await emulator.close();
});

const env = () => ({
  DELTASYNC_GOOGLE_TOKEN: "cli-token",
  DELTASYNC_GOOGLE_BASE_URL: emulator.url,
});

describe("google: CLI source", () => {
  it("opens every scope and syncs it through the emulator", async () => {
    for (const [url, size] of [
      ["google:calendar/team%40group.calendar.google.com", 1],
      ["google:calendar/primary?singleEvents=true", 0],
      ["google:calendars", 2],
      ["google:contacts", 1],
      ["google:gmail", 1],
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
    await expect(cliSource.open(new URL("google:gmail"), { env: {} })).rejects.toBeInstanceOf(
      AuthError,
    );
    for (const bad of ["google:calendar", "google:mail", "google:calendar/x?singleEvents=maybe"]) {
      await expect(cliSource.open(new URL(bad), { env: env() })).rejects.toBeInstanceOf(
        ArgumentError,
      );
    }
  });
});
