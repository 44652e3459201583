import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { firstValueFrom, take, toArray } from "rxjs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type AurinkoAccount, signDelivery } from "../../adapters/aurinko/index.js";
import { ArgumentError, ProtocolError } from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import { watch } from "../../src/orchestrator/watch.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { AurinkoEmulator } from "./emulator.js";
import { account, message } from "./helpers.js";

const SECRET = "test-signing-secret";
let emulator: AurinkoEmulator;
let server: Server;
let hookUrl: string;
let alice: AurinkoAccount;

beforeAll(async () => {
  emulator = await AurinkoEmulator.start({ signingSecret: SECRET });
  // The app's endpoint: routes to the current test's account.
  server = createServer((req, res) => alice.webhook.node(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/aurinko`;
});
afterAll(async () => {
  await emulator.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  emulator.reset();
  alice = account(emulator, "alice", { signingSecret: SECRET });
});
afterEach(async () => {
  await alice.close();
});

const model = () => emulator.account("alice");

/** Posts a delivery to the receiver (fetch style), signed as given. */
async function post(body: string, headers: Record<string, string>): Promise<number> {
  const res = await alice.webhook.fetch(
    new Request(hookUrl, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", ...headers },
    }),
  );
  return res.status;
}

function sign(body: string, timestamp: number, secret = SECRET): Record<string, string> {
  return {
    "x-aurinko-request-timestamp": String(timestamp),
    "x-aurinko-signature": signDelivery(secret, String(timestamp), body),
  };
}

const now = () => Math.floor(Date.now() / 1000);

describe("subscriptions", () => {
  it("subscribes to /email/messages through the validationToken handshake; deliveries notify mail()", async () => {
    const seen = firstValueFrom(alice.mail().notifications().pipe(take(1)));
    const sub = await alice.watchMail({ notificationUrl: hookUrl });
    expect(sub.resource).toBe("/email/messages");
    expect(emulator.subscriptions.get(sub.id)?.resource).toBe("/email/messages");
    model().insert("email", message("hello"), "m1");
    await emulator.flush();
    const n = (await seen) as Notification;
    expect(n).toMatchObject({ scope: "mail", eventType: "created", objectType: "item" });
    expect(n.object.sourcekey).toBe("m1");
    expect(emulator.deliveries.map((d) => d.status)).toEqual([200]);
  });

  it("uses the documented resources for calendars, contacts and task lists", async () => {
    model().addCalendar("primary");
    model().addTasklist("l1");
    const subs = [
      await alice.watchCalendar("primary", { notificationUrl: hookUrl }),
      await alice.watchContacts({ notificationUrl: hookUrl }),
      await alice.watchTasks("l1", { notificationUrl: hookUrl }),
    ];
    expect(subs.map((s) => s.resource)).toEqual([
      "/calendars/primary/events",
      "/contacts",
      "/tasklists/l1/tasks",
    ]);
    const seen = firstValueFrom(alice.tasks("l1").notifications().pipe(take(2), toArray()));
    model().insert("tasklists/l1", { title: "t" }, "t1");
    model().remove("tasklists/l1", "t1");
    await emulator.flush();
    expect((await seen).map((n) => `${n.scope} ${n.eventType} ${n.object.sourcekey}`)).toEqual([
      "tasks:l1 created t1",
      "tasks:l1 deleted t1",
    ]);
  });

  it("a failed handshake fails the subscription; a notificationUrl that is no URL is an ArgumentError", async () => {
    await expect(
      alice.watchMail({ notificationUrl: "http://127.0.0.1:9/nothing-listens" }),
    ).rejects.toBeInstanceOf(ProtocolError);
    await expect(alice.watchMail({ notificationUrl: "hooks/aurinko" })).rejects.toBeInstanceOf(
      ArgumentError,
    );
  });

  it("echoes a validationToken only while a subscription is being created", async () => {
    const res = await alice.webhook.fetch(
      new Request(`${hookUrl}?validationToken=abc`, { method: "POST" }),
    );
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("");
  });

  it("lifecycle error: re-subscribes (old one deleted) and makes the scope sync", async () => {
    const sub = await alice.watchMail({ notificationUrl: hookUrl });
    const first = sub.id;
    const seen = firstValueFrom(alice.mail().notifications().pipe(take(1)));
    emulator.lifecycle(first, "error");
    await emulator.flush();
    await vi.waitFor(() => expect(sub.id).not.toBe(first));
    // The old one is deleted after the new one exists (no gap): wait for the DELETE too.
    await vi.waitFor(() => expect([...emulator.subscriptions.keys()]).toEqual([sub.id]));
    expect(await seen).toMatchObject({ scope: "mail", objectType: "folder", eventType: "updated" });
  });

  it("the health check re-creates a subscription Aurinko deactivated or lost", async () => {
    const sub = await alice.watchMail({ notificationUrl: hookUrl, checkEveryMs: 5 });
    const first = sub.id;
    // After repeated failed deliveries Aurinko turns a subscription inactive.
    (emulator.subscriptions.get(first) as { active: boolean }).active = false;
    await vi.waitFor(() => expect(sub.id).not.toBe(first));
    const second = sub.id;
    expect(emulator.subscriptions.get(second)?.active).toBe(true);
    // The old one is deleted after the new one exists: wait for that DELETE too.
    await vi.waitFor(() => expect(emulator.subscriptions.has(first)).toBe(false));
    // Gone altogether (404): also re-created.
    emulator.subscriptions.delete(second);
    await vi.waitFor(() => expect(sub.id).not.toBe(second));
    await vi.waitFor(() => expect([...emulator.subscriptions.keys()]).toEqual([sub.id]));
    await sub.stop();
  });

  it("stop() deletes the subscription; its deliveries are then refused", async () => {
    const sub = await alice.watchMail({ notificationUrl: hookUrl });
    const id = sub.id;
    await sub.stop();
    await sub.stop();
    expect(emulator.subscriptions.size).toBe(0);
    const body = JSON.stringify({
      subscription: id,
      payloads: [{ id: "m1", changeType: "created" }],
    });
    expect(await post(body, sign(body, now()))).toBe(404);
  });

  it("feeds the orchestrator's watch: a delivery runs a round", async () => {
    await alice.watchMail({ notificationUrl: hookUrl });
    const store = createMemoryStateStore();
    const updated: string[] = [];
    const results = firstValueFrom(
      watch(alice.mail(), {
        store,
        pollIntervalMs: 3600_000,
        debounceMs: 0,
        onUpdated: (records) => void updated.push(...records.map((r) => r.sourcekey)),
      }).pipe(take(2), toArray()),
    );
    await vi.waitFor(() =>
      expect(emulator.requests.some((r) => r.path.endsWith("/sync/deleted"))).toBe(true),
    );
    model().insert("email", message("pushed"), "p1");
    await emulator.flush();
    const [initial, pushed] = await results;
    expect(initial?.trigger).toBe("initial");
    expect(pushed?.trigger).toBe("push");
    expect(updated).toEqual(["p1"]);
  });
});

describe("the receiver's signature check", () => {
  let subscription: string;
  beforeEach(async () => {
    subscription = (await alice.watchMail({ notificationUrl: hookUrl })).id;
  });
  const delivery = () =>
    JSON.stringify({
      subscription,
      accountId: "x",
      payloads: [{ id: "m1", changeType: "updated" }],
    });

  it("accepts a delivery signed over v0:{timestamp}:{raw body}", async () => {
    const body = delivery();
    expect(await post(body, sign(body, now()))).toBe(200);
  });

  it("refuses a forged signature (another secret)", async () => {
    const body = delivery();
    expect(await post(body, sign(body, now(), "not-the-secret"))).toBe(401);
  });

  it("refuses an altered body", async () => {
    const body = delivery();
    const headers = sign(body, now());
    expect(await post(body.replace("m1", "m2"), headers)).toBe(401);
    // A signature over the body alone (the Elixir client's check) is not Aurinko's signature.
    const bodyOnly = createHmac("sha256", SECRET).update(body).digest("hex");
    expect(await post(body, { ...headers, "x-aurinko-signature": bodyOnly })).toBe(401);
  });

  it("refuses a signature made for another timestamp", async () => {
    const body = delivery();
    const headers = sign(body, now());
    headers["x-aurinko-request-timestamp"] = String(now() - 1);
    expect(await post(body, headers)).toBe(401);
  });

  it("refuses unsigned requests and requests without a timestamp", async () => {
    const body = delivery();
    expect(await post(body, {})).toBe(401);
    const headers = sign(body, now());
    expect(
      await post(body, { "x-aurinko-signature": headers["x-aurinko-signature"] as string }),
    ).toBe(401);
    expect(
      await post(body, {
        "x-aurinko-request-timestamp": headers["x-aurinko-request-timestamp"] as string,
      }),
    ).toBe(401);
    expect(await post(body, { ...headers, "x-aurinko-signature": "zz" })).toBe(401);
  });

  it("refuses stale and future timestamps beyond the tolerance (default 300 s)", async () => {
    const body = delivery();
    expect(await post(body, sign(body, now() - 400))).toBe(401);
    expect(await post(body, sign(body, now() + 400))).toBe(401);
    expect(await post(body, sign(body, now() - 200))).toBe(200);
  });

  it("the tolerance is configurable", async () => {
    const strict = account(emulator, "alice", { signingSecret: SECRET, webhookToleranceSec: 10 });
    try {
      const body = JSON.stringify({ subscription: "nope" });
      const res = await strict.webhook.fetch(
        new Request(hookUrl, { method: "POST", body, headers: sign(body, now() - 20) }),
      );
      expect(res.status).toBe(401);
    } finally {
      await strict.close();
    }
  });

  it("without a signing secret every delivery is refused", async () => {
    const open = account(emulator, "alice");
    try {
      const body = delivery();
      const res = await open.webhook.fetch(
        new Request(hookUrl, { method: "POST", body, headers: sign(body, now()) }),
      );
      expect(res.status).toBe(401);
    } finally {
      await open.close();
    }
  });

  it("a signed but malformed body is a 400, an unknown subscription a 404", async () => {
    expect(await post("{", sign("{", now()))).toBe(400);
    const body = JSON.stringify({ subscription: "999" });
    expect(await post(body, sign(body, now()))).toBe(404);
  });

  it("deliveries from the emulator carry valid signatures on the raw bytes (non-ASCII body)", async () => {
    model().insert("email", message("héllo ✓"), "m-ü");
    await emulator.flush();
    expect(emulator.deliveries.map((d) => d.status)).toEqual([200]);
  });
});
