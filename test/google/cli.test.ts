import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliSource } from "../../adapters/google/cli.js";
import { credentialEnv } from "../../src/cli/commands.js";
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

  it("--token reaches the connection (the CLI copies it to the adapter's variable)", async () => {
    const env = credentialEnv({ token: "cli-token" }, cliSource);
    expect(env.DELTASYNC_GOOGLE_TOKEN).toBe("cli-token");
    const opened = await cliSource.open(new URL("google:calendars"), {
      env: { ...env, DELTASYNC_GOOGLE_BASE_URL: emulator.url },
    });
    const r = recorder();
    await opened.syncable.sync(r.importer); // the emulator accepts only "cli-token"
    expect(r.items.size).toBe(2);
    await opened.close();
    expect(() => credentialEnv({ password: "pw" }, cliSource)).toThrow(
      "the google: source takes no --password (use --token)",
    );
  });

  it("requires credentials and rejects malformed URLs and unknown parameters", async () => {
    // Missing credentials are a usage error (exit 2), not credentials a server refused.
    await expect(cliSource.open(new URL("google:gmail"), { env: {} })).rejects.toThrow(
      /google: no credentials: set DELTASYNC_GOOGLE_TOKEN/,
    );
    await expect(
      cliSource.open(new URL("google:gmail"), {
        env: { DELTASYNC_GOOGLE_REFRESH_TOKEN: "r" },
      }),
    ).rejects.toThrow(/needs DELTASYNC_GOOGLE_CLIENT_ID and DELTASYNC_GOOGLE_CLIENT_SECRET/);
    for (const bad of [
      "google:calendar",
      "google:mail",
      "google:calendar/x?singleEvents=maybe",
      "google:calendar/x?singleEvent=true",
    ]) {
      await expect(cliSource.open(new URL(bad), { env: env() })).rejects.toBeInstanceOf(
        ArgumentError,
      );
    }
  });
});

describe("google: CLI source with a refresh token", () => {
  let tokenServer: Server;
  let tokenUrl: string;
  let refreshes = 0;
  let refused = false;
  let issued: GoogleEmulator;
  beforeAll(async () => {
    // Only the refreshed token is accepted by this emulator.
    issued = await GoogleEmulator.start({ tokens: ["fresh-1"] });
    issued.model.addCalendar("primary");
    issued.model.insertEvent("primary", { summary: "standup", day: 1 });
    tokenServer = createServer((req, res) => {
      let body = "";
      req.on("data", (b: Buffer) => {
        body += b.toString();
      });
      req.on("end", () => {
        const form = new URLSearchParams(body);
        const good =
          form.get("grant_type") === "refresh_token" &&
          form.get("refresh_token") === "refresh-abc" &&
          form.get("client_id") === "client-1" &&
          form.get("client_secret") === "secret-1";
        if (!good || refused) {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              error: "invalid_grant",
              error_description: "Token has been expired or revoked.",
            }),
          );
          return;
        }
        refreshes++;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ access_token: "fresh-1", expires_in: 3599, token_type: "Bearer" }),
        );
      });
    });
    await new Promise<void>((r) => tokenServer.listen(0, "127.0.0.1", r));
    tokenUrl = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
  });
  afterAll(async () => {
    tokenServer.close();
    await issued.close();
  });
  const refreshEnv = (extra: Record<string, string> = {}) => ({
    DELTASYNC_GOOGLE_REFRESH_TOKEN: "refresh-abc",
    DELTASYNC_GOOGLE_CLIENT_ID: "client-1",
    DELTASYNC_GOOGLE_CLIENT_SECRET: "secret-1",
    DELTASYNC_GOOGLE_TOKEN_URL: tokenUrl,
    DELTASYNC_GOOGLE_BASE_URL: issued.url,
    ...extra,
  });

  it("gets an access token with the refresh token, once for several requests", async () => {
    refreshes = 0;
    const opened = await cliSource.open(new URL("google:calendar/primary"), { env: refreshEnv() });
    const r = recorder();
    const state = await opened.syncable.sync(r.importer);
    await opened.syncable.sync(r.importer, state);
    expect(r.items.size).toBe(1);
    expect(refreshes).toBe(1);
    await opened.close();
  });

  it("refreshes an expired access token after a 401, through getAccessToken", async () => {
    refreshes = 0;
    const opened = await cliSource.open(new URL("google:calendar/primary"), {
      env: refreshEnv({ DELTASYNC_GOOGLE_TOKEN: "expired-token" }),
    });
    const r = recorder();
    await opened.syncable.sync(r.importer);
    expect(r.items.size).toBe(1);
    expect(refreshes).toBe(1);
    await opened.close();
  });

  it("a refused refresh token is an AuthError saying so", async () => {
    refused = true;
    try {
      const opened = await cliSource.open(new URL("google:calendar/primary"), {
        env: refreshEnv(),
      });
      const error = await opened.syncable.sync(recorder().importer).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthError);
      expect(String(error)).toMatch(/invalid_grant|refresh token was refused/);
      expect(String(error)).not.toContain("refresh-abc");
      await opened.close();
    } finally {
      refused = false;
    }
  });
});
