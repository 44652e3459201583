import { describe, expect, it } from "vitest";
import { credentialsOf, jobEnvironment } from "../../src/cli/credentials.js";

const google = { schemes: ["google"], credentialFlags: { token: "DELTASYNC_GOOGLE_TOKEN" } };

describe("deltasync worker credentials", () => {
  it("a job sees the worker's non-secret variables, its own <NAME>__<id> ones, then the module's; never another's or the worker's secrets", () => {
    const processEnv = {
      DELTASYNC_GOOGLE_BASE_URL: "http://emulator",
      DELTASYNC_GOOGLE_TOKEN: "worker-wide-token",
      DELTASYNC_GOOGLE_REFRESH_TOKEN__alice: "alice-refresh",
      DELTASYNC_GOOGLE_REFRESH_TOKEN__bob: "bob-refresh",
    };
    const alice = jobEnvironment("alice", processEnv, {}, google);
    expect(alice.env).toEqual({
      DELTASYNC_GOOGLE_BASE_URL: "http://emulator",
      DELTASYNC_GOOGLE_REFRESH_TOKEN: "alice-refresh",
    });
    expect(alice.secrets).toEqual(["alice-refresh"]);
    const carol = jobEnvironment("carol", processEnv, { token: "carol-token" }, google);
    expect(carol.env.DELTASYNC_GOOGLE_TOKEN).toBe("carol-token");
    expect(carol.env.DELTASYNC_GOOGLE_REFRESH_TOKEN).toBeUndefined();
    expect(carol.secrets).toContain("carol-token");
    expect(() => jobEnvironment("carol", {}, { password: "pw" }, google)).toThrow(
      /takes no --password/,
    );
  });

  it("the module's answer is checked without echoing it; none parks the account", async () => {
    await expect(credentialsOf("a", () => null)).rejects.toThrow(/no credentials for account a/);
    const bad = credentialsOf("a", () => ({ token: 42, leaked: "s3cret" }));
    await expect(bad).rejects.toThrow(/getCredentials\("a"\)/);
    await expect(bad).rejects.not.toThrow(/s3cret|42/);
    expect(await credentialsOf("a", async () => ({ env: { X_TOKEN: "t" } }))).toEqual({
      env: { X_TOKEN: "t" },
    });
    expect(await credentialsOf("a", undefined)).toEqual({});
  });
});
