import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { firstValueFrom, take, toArray } from "rxjs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { GoogleAccount } from "../../adapters/google/index.js";
import type { Notification } from "../../src/core/types.js";
import { GoogleEmulator } from "./emulator.js";
import { account } from "./helpers.js";

let emulator: GoogleEmulator;
let google: GoogleAccount;
let hook: Server;
let hookUrl: string;
const statuses: number[] = [];

beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(async () => {
  emulator.reset();
  emulator.model.addCalendar("primary");
  emulator.model.addCalendar("work");
  google = account(emulator);
  statuses.length = 0;
  hook = createServer((req, res) => {
    res.on("finish", () => statuses.push(res.statusCode));
    google.webhook.node(req, res);
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
});
afterEach(async () => {
  await google.close();
  hook.closeAllConnections();
  await new Promise((resolve) => hook.close(resolve));
});

const SECRET = "s3cret-channel-token";

describe("events.watch push", () => {
  it("ignores the sync message and turns `exists` into a notification on the calendar's scope only", async () => {
    const primary: Notification[] = [];
    const work: Notification[] = [];
    const subs = [
      google.calendar("primary").subscribe({ update: (n) => void primary.push(n) }),
      google.calendar("work").subscribe({ update: (n) => void work.push(n) }),
    ];
    const watch = await google.watchCalendar("primary", { address: hookUrl, token: SECRET });
    await emulator.flush();
    expect(statuses).toEqual([200]);
    expect(primary).toHaveLength(0);
    emulator.model.insertEvent("primary", { summary: "a", day: 1 });
    await emulator.flush();
    expect(primary).toHaveLength(1);
    expect(primary[0]).toMatchObject({ scope: "calendar:primary", eventType: "updated" });
    expect(work).toHaveLength(0);
    expect(google.calendar("primary").supportsPush).toBe(true);
    await watch.stop();
    expect(emulator.channels.size).toBe(0);
    await watch.stop();
    for (const s of subs) s.unsubscribe();
  });

  it("rejects forged deliveries: wrong token, unknown channel, foreign resource, wrong method", async () => {
    const seen: Notification[] = [];
    const sub = google.calendar("primary").subscribe({ update: (n) => void seen.push(n) });
    const watch = await google.watchCalendar("primary", { address: hookUrl, token: SECRET });
    await emulator.flush();
    const { id, resourceId } = watch.channel;
    const send = (headers: Record<string, string>, method = "POST") =>
      fetch(hookUrl, { method, headers }).then((r) => r.status);
    const base = {
      "x-goog-channel-id": id,
      "x-goog-resource-id": resourceId,
      "x-goog-resource-state": "exists",
      "x-goog-channel-token": SECRET,
      "x-goog-message-number": "9",
    };
    expect(await send({ ...base, "x-goog-channel-token": "guess" })).toBe(403);
    expect(await send({ ...base, "x-goog-channel-token": `${SECRET}x` })).toBe(403);
    const { "x-goog-channel-token": _omit, ...noToken } = base;
    expect(await send(noToken)).toBe(403);
    expect(await send({ ...base, "x-goog-channel-id": "someone-else" })).toBe(404);
    expect(await send({ ...base, "x-goog-resource-id": "other-resource" })).toBe(403);
    expect(await send({ ...base, "x-goog-resource-state": "bogus" })).toBe(400);
    expect(await send(base, "PUT")).toBe(405);
    expect(seen).toHaveLength(0);
    expect(await send(base)).toBe(200);
    expect(seen).toHaveLength(1);
    sub.unsubscribe();
    await watch.stop();
  });

  it("works as a fetch-style handler", async () => {
    const watch = await google.watchCalendar("primary", { address: hookUrl, token: SECRET });
    const next = firstValueFrom(
      google.calendar("primary").notifications().pipe(take(1), toArray()),
    );
    const request = (token: string) =>
      new Request("https://example.com/hook", {
        method: "POST",
        headers: {
          "x-goog-channel-id": watch.channel.id,
          "x-goog-resource-id": watch.channel.resourceId,
          "x-goog-resource-state": "exists",
          "x-goog-channel-token": token,
        },
      });
    expect((await google.webhook.fetch(request("nope"))).status).toBe(403);
    expect((await google.webhook.fetch(request(SECRET))).status).toBe(200);
    const [n] = await next;
    expect(n?.scope).toBe("calendar:primary");
    await watch.stop();
  });

  it("renews the channel before it expires and stops the old one", async () => {
    emulator.channels.clear();
    emulator.options.channelTtlMs = 400;
    const watch = await google.watchCalendar("primary", {
      address: hookUrl,
      token: SECRET,
      renewBeforeMs: 300,
    });
    const first = watch.channel.id;
    await vi.waitFor(
      () => {
        expect(watch.channel.id).not.toBe(first);
        expect([...emulator.channels.keys()]).toEqual([watch.channel.id]);
      },
      { timeout: 5000, interval: 20 },
    );
    await watch.stop();
    emulator.options.channelTtlMs = undefined;
  });

  it("stops every channel on close", async () => {
    await google.watchCalendar("primary", { address: hookUrl, token: SECRET });
    await google.watchCalendar("work", { address: hookUrl, token: SECRET });
    expect(emulator.channels.size).toBe(2);
    await google.close();
    expect(emulator.channels.size).toBe(0);
  });
});
