/**
 * Gmail push: `users.watch` onto a Pub/Sub topic (renewed, stopped), the push subscription's
 * receiver in both handler styles, forged deliveries, and push-driven syncs.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { filter, firstValueFrom } from "rxjs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { parseDelivery, renewalDelay } from "../../adapters/google/google-gmail-push.js";
import type { GoogleAccount, MailWatchOptions } from "../../adapters/google/index.js";
import { ArgumentError, AuthError, DeltaSyncError, ProtocolError } from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import { watch as watchScope } from "../../src/orchestrator/watch.js";
import { createMemoryStateStore } from "../../src/stores/index.js";
import { GoogleEmulator } from "./emulator.js";
import { account, recorder } from "./helpers.js";

const TOPIC = "projects/emu/topics/gmail";
const SECRET = "pubsub-push-secret-0123456789";
const DAY = 86_400_000;

let emulator: GoogleEmulator;
let google: GoogleAccount;
let hook: Server;
let hookUrl: string;
let errors: unknown[];
const statuses: number[] = [];

beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(async () => {
  emulator.reset();
  google = account(emulator);
  statuses.length = 0;
  errors = [];
  hook = createServer((req, res) => {
    res.on("finish", () => statuses.push(res.statusCode));
    google.mailWebhook.node(req, res);
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/gmail`;
  emulator.gmailPush.subscribe(TOPIC, `${hookUrl}?token=${SECRET}`);
});
afterEach(async () => {
  vi.useRealTimers();
  await google.close();
  await emulator.flush();
  hook.closeAllConnections();
  await new Promise((resolve) => hook.close(resolve));
});

const options = (extra: Partial<MailWatchOptions> = {}): MailWatchOptions => ({
  topicName: TOPIC,
  token: SECRET,
  onError: (e) => void errors.push(e),
  ...extra,
});

/** A Pub/Sub push envelope around `data` (an object is JSON-encoded, then base64). */
function envelope(data: unknown, extra: Record<string, unknown> = {}): string {
  const encoded =
    typeof data === "string" ? data : Buffer.from(JSON.stringify(data)).toString("base64");
  return JSON.stringify({
    message: { data: encoded, messageId: "42", publishTime: "2026-01-01T00:00:00Z" },
    subscription: "projects/emu/subscriptions/s",
    ...extra,
  });
}

const ours = { emailAddress: "me@example.com", historyId: "12345" };

/** POSTs to the Node-style receiver over HTTP. */
async function post(body: string, query = `?token=${SECRET}`, method = "POST"): Promise<number> {
  const res = await fetch(`${hookUrl}${query}`, {
    method,
    headers: { "content-type": "application/json" },
    body: method === "GET" ? undefined : body,
  });
  await res.arrayBuffer();
  return res.status;
}

/** Calls the fetch-style receiver directly. */
async function fetchStyle(
  body: string,
  query = `?token=${SECRET}`,
  headers: Record<string, string> = {},
): Promise<number> {
  const request = new Request(`https://hooks.example.com/gmail${query}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return (await google.mailWebhook.fetch(request)).status;
}

function collect(): { seen: Notification[]; stop(): void } {
  const seen: Notification[] = [];
  const sub = google.mail().subscribe({ update: (n) => void seen.push(n) });
  return { seen, stop: () => sub.unsubscribe() };
}

describe("users.watch → Pub/Sub push → notification → sync", () => {
  it("imports a message that arrived while watched, driven by the delivery", async () => {
    const mail = google.mail();
    expect(mail.supportsPush).toBe(true);
    emulator.model.receiveMessage("before");
    const rec = recorder();
    let state = await mail.sync(rec.importer);
    expect(rec.items.size).toBe(1);

    const { seen, stop } = collect();
    const watch = await google.watchMail(options({ labelIds: ["INBOX"] }));
    expect(watch.emailAddress).toBe("me@example.com");
    expect(emulator.gmailPush.watch).toMatchObject({
      topicName: TOPIC,
      labelIds: ["INBOX"],
      historyId: watch.historyId,
    });
    await emulator.flush();
    // Gmail publishes once right after the watch is created.
    expect(statuses).toEqual([200]);
    expect(seen).toHaveLength(1);

    const next = firstValueFrom(mail.notifications());
    const id = emulator.model.receiveMessage("pushed");
    const n = await next;
    expect(n).toMatchObject({
      scope: "mail",
      objectType: "folder",
      eventType: "updated",
      object: { sourcekey: "gmail:me", type: "folder", changeKey: String(emulator.model.seq) },
    });
    expect((n.object as { data: unknown }).data).toMatchObject({
      emailAddress: "me@example.com",
      historyId: String(emulator.model.seq),
    });
    // The hint only: the sync runs from the stored state and finds the message.
    state = await mail.sync(rec.importer, state);
    expect(rec.items.has(id)).toBe(true);
    expect(rec.log.at(-1)).toBe(`update ${id}`);
    await emulator.flush();
    expect(statuses).toEqual([200, 200]);
    expect(errors).toEqual([]);
    expect(state).toMatch(/^ds1\./);
    stop();
    await watch.stop();
  });

  it("drives the orchestrator's watch: a delivery starts a push round that imports the message", async () => {
    const imported: string[] = [];
    const results = watchScope(google.mail(), {
      store: createMemoryStateStore(),
      onUpdated: (records) => void imported.push(...records.map((r) => r.sourcekey)),
      pollIntervalMs: 0, // no safety poll here: only the push may start the second round
      debounceMs: 0,
    });
    // The initial full sync may already see the message (its history follow-up can run after
    // it arrived); the push round must come either way, and the message be imported once done.
    const pushed = firstValueFrom(results.pipe(filter((r) => r.trigger === "push")));
    const watch = await google.watchMail(options());
    await emulator.flush();
    const id = emulator.model.receiveMessage("via orchestrator");
    expect(await pushed).toMatchObject({ trigger: "push" });
    expect(imported).toContain(id);
    await watch.stop();
  });

  it("passes labelIds and labelFilterBehavior; Gmail only publishes matching changes", async () => {
    const id = emulator.model.receiveMessage("inbox");
    const watch = await google.watchMail(
      options({ labelIds: ["STARRED"], labelFilterBehavior: "include" }),
    );
    expect(emulator.gmailPush.watch).toMatchObject({
      labelIds: ["STARRED"],
      labelFilterBehavior: "include",
    });
    await emulator.flush();
    const before = emulator.gmailPush.deliveries.length;
    emulator.model.setLabel(id, "UNREAD", false); // not about STARRED
    emulator.model.setLabel(id, "STARRED", true);
    await emulator.flush();
    expect(emulator.gmailPush.deliveries.length).toBe(before + 1);
    await watch.stop();
  });
});

describe("renewal", () => {
  it("renewalDelay: never later than the renewal period, always before expiry", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 * DAY }),
        fc.integer({ min: 1, max: 7 * DAY }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (left, every, now) => {
          const delay = renewalDelay(now + left, now, every);
          expect(delay).toBeGreaterThan(0);
          expect(delay).toBeLessThanOrEqual(every);
          expect(delay).toBeLessThan(left);
        },
      ),
    );
    expect(renewalDelay(1000, 5000, DAY)).toBe(0); // already expired: renew at once
    expect(renewalDelay(7 * DAY, 0, DAY)).toBe(DAY); // Gmail's 7 days: daily
  });

  it("re-calls users.watch daily by default (fake clock)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const watch = await google.watchMail(options());
    const first = watch.expiration;
    expect(emulator.gmailPush.watchCalls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(DAY - 1000);
    expect(emulator.gmailPush.watchCalls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    await vi.waitFor(() => expect(emulator.gmailPush.watchCalls).toHaveLength(2));
    await vi.waitFor(() => expect(watch.expiration).toBeGreaterThan(first));
    expect(emulator.gmailPush.watchCalls.every((c) => !c.lapsed)).toBe(true);
    expect(errors).toEqual([]);
    await watch.stop();
  });

  it("renews a short-lived watch before it expires", async () => {
    emulator.gmailPush.ttlMs = 2000;
    const watch = await google.watchMail(options());
    await vi.waitFor(() => expect(emulator.gmailPush.watchCalls.length).toBeGreaterThanOrEqual(3), {
      timeout: 10_000,
      interval: 20,
    });
    await watch.stop();
    expect(emulator.gmailPush.watchCalls.every((c) => !c.lapsed)).toBe(true);
    expect(errors).toEqual([]);
  });

  it("a failed renewal goes to onError and is retried; the watch keeps working", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const watch = await google.watchMail(options({ renewEveryMs: 3600_000 }));
    emulator.inject({ path: /\/users\/me\/watch$/, status: 400 });
    await vi.advanceTimersByTimeAsync(3600_000);
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toBeInstanceOf(DeltaSyncError);
    expect(emulator.gmailPush.watchCalls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(60_000);
    await vi.waitFor(() => expect(emulator.gmailPush.watchCalls).toHaveLength(2));
    await watch.stop();
  });
});

describe("stop and lifecycle", () => {
  it("stop() calls users.stop once; later changes publish nothing; stragglers are acked", async () => {
    const { seen, stop } = collect();
    const watch = await google.watchMail(options());
    await emulator.flush();
    expect(seen).toHaveLength(1);
    await watch.stop();
    await watch.stop();
    expect(emulator.gmailPush.stopCalls).toBe(1);
    expect(emulator.gmailPush.watch).toBeUndefined();
    const delivered = emulator.gmailPush.deliveries.length;
    emulator.model.receiveMessage("after stop");
    await emulator.flush();
    expect(emulator.gmailPush.deliveries.length).toBe(delivered);
    // Published before users.stop took effect: acknowledged (no redelivery), not emitted.
    expect(await post(envelope(ours))).toBe(200);
    expect(await post(envelope(ours), "?token=wrong")).toBe(403);
    expect(seen).toHaveLength(1);
    stop();
    // A new watch may start after stop().
    const again = await google.watchMail(options());
    expect(emulator.gmailPush.watchCalls).toHaveLength(2);
    await again.stop();
  });

  it("stop() during a renewal waits for it, so users.stop comes last", async () => {
    const watch = await google.watchMail(options({ renewEveryMs: 50 }));
    emulator.gmailPush.watchLatencyMs = 200;
    await vi.waitFor(
      () => expect(emulator.requests.filter((r) => r.path.endsWith("/watch"))).toHaveLength(2),
      {
        interval: 5,
      },
    );
    await watch.stop(); // the renewal is still being answered
    expect(emulator.gmailPush.watchCalls).toHaveLength(2);
    expect(emulator.gmailPush.stopCalls).toBe(1);
    expect(emulator.gmailPush.watch).toBeUndefined();
  });

  it("close() stops the watch", async () => {
    await google.watchMail(options());
    await google.close();
    expect(emulator.gmailPush.stopCalls).toBe(1);
  });

  it("refuses bad options and a second concurrent watch", async () => {
    await expect(google.watchMail(options({ topicName: "gmail" }))).rejects.toBeInstanceOf(
      ArgumentError,
    );
    await expect(google.watchMail(options({ token: "" }))).rejects.toBeInstanceOf(ArgumentError);
    await expect(google.watchMail(options({ renewEveryMs: 0 }))).rejects.toBeInstanceOf(
      ArgumentError,
    );
    const watch = await google.watchMail(options());
    await expect(google.watchMail(options())).rejects.toThrow(/already watches/);
    await watch.stop();
  });

  it("a failed users.watch leaves nothing registered", async () => {
    emulator.gmailPush.createTopic("projects/emu/topics/closed", { gmailMayPublish: false });
    await expect(
      google.watchMail(options({ topicName: "projects/emu/topics/closed" })),
    ).rejects.toBeInstanceOf(AuthError);
    await expect(
      google.watchMail(options({ topicName: "projects/emu/topics/missing" })),
    ).rejects.toBeInstanceOf(DeltaSyncError);
    expect(await post(envelope(ours))).toBe(404);
    const watch = await google.watchMail(options());
    await watch.stop();
  });

  it("validates the users.watch response, naming the field", async () => {
    emulator.inject({ path: /\/users\/me\/watch$/, status: 200, body: { historyId: "12" } });
    const error = await google.watchMail(options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).message).toMatch(/gmail\.users\.watch.*expiration/);
    emulator.inject({
      path: /\/users\/me\/watch$/,
      status: 200,
      body: { historyId: "x1", expiration: "1" },
    });
    await expect(google.watchMail(options())).rejects.toThrow(/historyId/);
  });

  it("an explicit emailAddress skips users.getProfile and is compared case-insensitively", async () => {
    const { seen, stop } = collect();
    const watch = await google.watchMail(options({ emailAddress: "Me@Example.COM" }));
    expect(emulator.requests.some((r) => r.path.endsWith("/profile"))).toBe(false);
    await emulator.flush();
    expect(seen).toHaveLength(1);
    stop();
    await watch.stop();
  });
});

describe("forged and malformed deliveries", () => {
  it("404 before any watch; 405 for other methods", async () => {
    expect(await post(envelope(ours))).toBe(404);
    const watch = await google.watchMail(options());
    expect(await post("", `?token=${SECRET}`, "GET")).toBe(405);
    expect(await post(envelope(ours), `?token=${SECRET}`, "PUT")).toBe(405);
    await watch.stop();
  });

  it("Node handler: refuses missing and wrong tokens (any length), malformed bodies, and acks other mailboxes", async () => {
    const watch = await google.watchMail(options());
    await emulator.flush();
    const { seen, stop } = collect();
    const body = envelope(ours);
    expect(await post(body, "")).toBe(401);
    expect(await post(body, "?token=")).toBe(403);
    expect(await post(body, `?token=${SECRET.replace(/.$/, "X")}`)).toBe(403); // same length
    expect(await post(body, `?token=${SECRET}x`)).toBe(403); // longer
    expect(await post(body, `?token=${SECRET.slice(0, 5)}`)).toBe(403); // shorter
    expect(await post(body, `?tok=${SECRET}`)).toBe(401);
    const authErrors = errors.splice(0);
    expect(authErrors).toHaveLength(6);
    for (const e of authErrors) expect(e).toBeInstanceOf(AuthError);

    const malformed: [string, RegExp][] = [
      ["{not json", /\(body\): not JSON/],
      [JSON.stringify({ subscription: "s" }), /at message:/],
      [envelope(ours, { subscription: undefined }), /at subscription/],
      [JSON.stringify({ message: { data: "e30=" }, subscription: "s" }), /message\.messageId/],
      [envelope("!!!not base64!!!"), /message\.data: not base64/],
      [envelope("a"), /message\.data: not base64/],
      [envelope(Buffer.from("not json").toString("base64")), /message\.data: not JSON/],
      [envelope({ historyId: "1" }), /message\.data\.emailAddress/],
      [envelope({ emailAddress: "me@example.com", historyId: "12a" }), /message\.data\.historyId/],
      [envelope({ emailAddress: "me@example.com", historyId: -3 }), /message\.data\.historyId/],
      [envelope([1, 2]), /message\.data/],
    ];
    for (const [text, why] of malformed) {
      expect(await post(text), text).toBe(400);
      const e = errors.shift();
      expect(e, text).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).message, text).toMatch(why);
      expect((e as ProtocolError).endpoint).toBe("gmail.push");
    }
    // Too large: refused before it is all read.
    expect(await post(envelope(ours, { padding: "x".repeat(100_000) }))).toBe(413);
    expect(errors.shift()).toBeInstanceOf(ProtocolError);

    // Another user's mailbox on a shared topic: acknowledged (so Pub/Sub stops), not emitted.
    expect(await post(envelope({ emailAddress: "other@example.com", historyId: "9" }))).toBe(200);
    expect(seen).toHaveLength(0);
    expect(errors).toEqual([]);
    // The real thing still works, in standard and url-safe base64, historyId string or number.
    expect(await post(body)).toBe(200);
    const urlSafe = Buffer.from(JSON.stringify({ ...ours, historyId: 7, pad: "??>>" })).toString(
      "base64url",
    );
    expect(await post(envelope(urlSafe))).toBe(200);
    expect(seen.map((n) => n.object.sourcekey)).toEqual(["gmail:me", "gmail:me"]);
    expect(seen.map((n) => (n.object as { changeKey?: string }).changeKey)).toEqual(["12345", "7"]);
    // The secret never reaches an error.
    for (const e of authErrors) expect(String((e as Error).message)).not.toContain(SECRET);
    stop();
    await watch.stop();
  });

  it("fetch handler: the same checks, and the notification", async () => {
    const watch = await google.watchMail(options());
    await emulator.flush();
    const next = firstValueFrom(google.mail().notifications());
    expect(await fetchStyle(envelope(ours), "")).toBe(401);
    expect(await fetchStyle(envelope(ours), "?token=nope")).toBe(403);
    expect(await fetchStyle("{")).toBe(400);
    expect(await fetchStyle(envelope(ours, { padding: "x".repeat(100_000) }))).toBe(413);
    expect(await fetchStyle(envelope({ ...ours, emailAddress: "x@y.z" }))).toBe(200);
    expect(await fetchStyle(envelope(ours))).toBe(200);
    const n = await next;
    expect(n).toMatchObject({ scope: "mail", object: { changeKey: "12345" } });
    expect((n.object as { data: unknown }).data).toEqual({
      emailAddress: "me@example.com",
      historyId: "12345",
      messageId: "42",
      publishTime: "2026-01-01T00:00:00Z",
    });
    await watch.stop();
  });

  it("verify(): sees the request headers; false → 401, a throw → 500 and onError", async () => {
    let answer: boolean | Error = true;
    const seenAuth: (string | null)[] = [];
    const watch = await google.watchMail(
      options({
        verify: async (request) => {
          seenAuth.push(request.headers.get("authorization"));
          expect(request.url.searchParams.get("token")).toBe(SECRET);
          if (answer instanceof Error) throw answer;
          return answer;
        },
      }),
    );
    await emulator.flush();
    expect(statuses).toEqual([200]); // the emulator's delivery passed verify() (no header)
    const bearer = { authorization: "Bearer eyJ.fake.jwt" };
    expect(await fetchStyle(envelope(ours), `?token=${SECRET}`, bearer)).toBe(200);
    answer = false;
    expect(await fetchStyle(envelope(ours), `?token=${SECRET}`, bearer)).toBe(401);
    expect(errors.shift()).toBeInstanceOf(AuthError);
    answer = new Error("certs unavailable");
    expect(await fetchStyle(envelope(ours), `?token=${SECRET}`, bearer)).toBe(500);
    expect((errors.shift() as Error).message).toBe("certs unavailable");
    // verify() only runs after the token check.
    expect(await fetchStyle(envelope(ours), "?token=nope", bearer)).toBe(403);
    expect(seenAuth).toEqual([null, ...Array(3).fill("Bearer eyJ.fake.jwt")]);
    await watch.stop();
  });

  it("any body: answered 200 or 400 (never 500), and a notification only for a valid delivery of ours", async () => {
    const watch = await google.watchMail(options());
    await emulator.flush();
    const { seen, stop } = collect();
    const data = fc.oneof(
      fc.record({
        emailAddress: fc.constantFrom("me@example.com", "ME@example.com", "other@example.com"),
        historyId: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String), fc.nat()),
      }),
      fc.jsonValue(),
    );
    const body = fc.oneof(
      fc.string(),
      fc.json(),
      data.map((d) => envelope(d)),
      fc.base64String().map((s) => envelope(s)),
      fc.string().map((s) => envelope(s)),
    );
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        let valid: { emailAddress: string } | undefined;
        try {
          valid = parseDelivery(Buffer.from(text));
        } catch {
          valid = undefined;
        }
        const before = seen.length;
        const status = await fetchStyle(text);
        expect(status).toBe(valid ? 200 : 400);
        const ours = valid?.emailAddress.toLowerCase() === "me@example.com";
        expect(seen.length - before).toBe(ours ? 1 : 0);
      }),
      { numRuns: 300 },
    );
    for (const e of errors) expect(e).toBeInstanceOf(ProtocolError);
    stop();
    await watch.stop();
  });
});
