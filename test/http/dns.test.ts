/**
 * Name resolution failures: a host that does not exist fails at once with a message naming it;
 * a resolver that could not answer (EAI_AGAIN) is transient and retried. The lookup is injected,
 * so the tests never depend on this machine's DNS.
 */
import type { LookupFunction } from "node:net";
import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { ArgumentError, isTransient, TransientError } from "../../src/core/errors.js";
import { createHttpClient } from "../../src/http/http-client.js";
import type { HttpClient } from "../../src/http/types.js";

const failing =
  (code: string, calls: { n: number }): LookupFunction =>
  (hostname, _options, callback) => {
    calls.n++;
    const error = Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), {
      code,
      hostname,
      syscall: "getaddrinfo",
    });
    callback(error, "", 4);
  };

let client: HttpClient | undefined;
let agent: Agent | undefined;
afterEach(async () => {
  await client?.close();
  await agent?.close();
});

function clientWith(code: string, calls: { n: number }): HttpClient {
  agent = new Agent({ connect: { lookup: failing(code, calls) } });
  client = createHttpClient({
    baseUrl: "http://dav.exmaple.com/",
    dispatcher: agent,
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 1 },
    sleep: async () => {},
  });
  return client;
}

describe("DNS failures", () => {
  it("ENOTFOUND: ArgumentError 'host not found: <host>' at once, not retried", async () => {
    const calls = { n: 0 };
    const error = await clientWith("ENOTFOUND", calls)
      .request({ path: "calendars/" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as Error).message).toBe("host not found: dav.exmaple.com");
    expect(isTransient(error)).toBe(false);
    expect(calls.n).toBe(1);
  });

  it("EAI_AGAIN: a TransientError, retried", async () => {
    const calls = { n: 0 };
    const error = await clientWith("EAI_AGAIN", calls)
      .request({ path: "calendars/" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/DNS lookup failed temporarily \(EAI_AGAIN\)/);
    expect(calls.n).toBe(4);
  });
});
