import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { GraphAccount } from "../../adapters/graph/index.js";
import { ArgumentError } from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import { watch } from "../../src/orchestrator/index.js";
import { createMemoryStateStore } from "../../src/stores/index.js";
import { GraphEmulator } from "./emulator.js";
import { account } from "./helpers.js";

let emulator: GraphEmulator;
let graph: GraphAccount;
let hook: Server;
let hookUrl: string;
const statuses: number[] = [];
const SECRET = "client-state-secret";

beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => emulator.close());
beforeEach(async () => {
  emulator.reset();
  graph = account(emulator);
  statuses.length = 0;
  hook = createServer((req, res) => {
    res.on("finish", () => statuses.push(res.statusCode));
    graph.webhook.node(req, res);
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/graph`;
});
afterEach(async () => {
  await graph.close();
  hook.closeAllConnections();
  await new Promise((resolve) => hook.close(resolve));
});

const options = (extra = {}) => ({
  notificationUrl: hookUrl,
  lifecycleNotificationUrl: `${hookUrl}?lifecycle=1`,
  clientState: SECRET,
  ...extra,
});

describe("subscriptions", () => {
  it("answers the validation handshake, then turns notifications into the scope's notifications", async () => {
    const seen: Notification[] = [];
    const other: Notification[] = [];
    graph.mail().subscribe((n) => void seen.push(n));
    graph.folder("inbox").subscribe((n) => void other.push(n));
    const sub = await graph.subscribe({ mail: true }, options());
    expect(emulator.validations).toEqual([
      { url: hookUrl, ok: true },
      { url: `${hookUrl}?lifecycle=1`, ok: true },
    ]);
    expect(emulator.subscriptions.get(sub.id)?.resource).toBe("me/messages");
    const create = emulator.requests.find(
      (r) => r.method === "POST" && r.path.endsWith("/subscriptions"),
    );
    expect(create?.prefer).toContain('IdType="ImmutableId"');
    const id = emulator.model.receive("inbox", "hello");
    await emulator.flush();
    expect(seen).toMatchObject([
      { scope: "mail", eventType: "created", objectType: "item", object: { sourcekey: id } },
    ]);
    expect(other).toEqual([]);
    expect(graph.mail().supportsPush).toBe(true);
    await sub.stop();
    expect(emulator.subscriptions.size).toBe(0);
    await sub.stop();
  });

  it("a receiver that does not echo the token makes the creation fail", async () => {
    const other = account(emulator);
    await expect(
      other.subscribe(
        { mail: true },
        { notificationUrl: `${emulator.url}nowhere`, clientState: SECRET },
      ),
    ).rejects.toThrow(/HTTP 400/);
    await other.close();
  });

  it("refuses forged, malformed, oversized and unexpected deliveries", async () => {
    const seen: Notification[] = [];
    graph.mail().subscribe((n) => void seen.push(n));
    const sub = await graph.subscribe({ mail: true }, options());
    const post = (body: unknown, url = hookUrl) =>
      fetch(url, {
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
      }).then((r) => r.status);
    const note = (clientState: string, subscriptionId = sub.id) => ({
      value: [
        {
          subscriptionId,
          clientState,
          changeType: "created",
          resource: "Users/u/Messages/x",
          resourceData: { id: "x" },
        },
      ],
    });
    expect(await post(note("wrong"))).toBe(403);
    expect(await post(note(SECRET, "someone-else"))).toBe(202);
    expect(await post("{not json")).toBe(400);
    expect(await post({ value: [] })).toBe(400);
    expect(await post("x".repeat(2 * 1024 * 1024))).toBe(413);
    expect((await fetch(hookUrl)).status).toBe(405);
    // No creation in flight: the receiver is not an open echo.
    expect(await post({}, `${hookUrl}?validationToken=abc`)).toBe(404);
    expect(seen).toEqual([]);
    expect(await post(note(SECRET))).toBe(202);
    expect(seen).toHaveLength(1);
  });

  it("the validation echo is the decoded token as text/plain (fetch-style handler too)", async () => {
    const pending = graph.subscribe({ contacts: true }, options());
    // While the creation is in flight, ask the fetch-style handler the way Graph would.
    const answer = await graph.webhook.fetch(
      new Request(`${hookUrl}?validationToken=${encodeURIComponent("a b&c<d>")}`, {
        method: "POST",
      }),
    );
    const sub = await pending;
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await answer.text()).toBe("a b&c<d>");
    await sub.stop();
  });

  it("lifecycle: reauthorizationRequired reauthorizes, subscriptionRemoved recreates and asks for a sync, missed asks for a sync", async () => {
    const seen: Notification[] = [];
    graph.folder("inbox").subscribe((n) => void seen.push(n));
    const sub = await graph.subscribe({ folder: "inbox" }, options());
    const first = sub.id;
    expect(emulator.subscriptions.get(first)?.resource).toBe("me/mailFolders('inbox')/messages");
    emulator.lifecycle(first, "reauthorizationRequired");
    await emulator.flush();
    await vi.waitFor(() => expect(emulator.subscriptions.get(first)?.reauthorized).toBe(1));
    emulator.lifecycle(first, "missed");
    await emulator.flush();
    expect(seen).toMatchObject([
      { scope: "folder:inbox", objectType: "folder", eventType: "updated" },
    ]);
    emulator.lifecycle(first, "subscriptionRemoved");
    await emulator.flush();
    await vi.waitFor(() => expect(sub.id).not.toBe(first));
    expect(emulator.subscriptions.has(sub.id)).toBe(true);
    expect(seen).toHaveLength(2);
    // Deliveries of the new subscription are accepted.
    emulator.model.receive("inbox", "after");
    await emulator.flush();
    expect(seen).toHaveLength(3);
    await sub.stop();
    expect(emulator.subscriptions.size).toBe(0);
  });

  it("renews before expiry with PATCH, and recreates one Graph no longer knows", async () => {
    const sub = await graph.subscribe(
      { calendar: "primary" },
      options({ ttlMs: 400, renewBeforeMs: 300 }),
    );
    const first = sub.id;
    const expiry = sub.expiration;
    await vi.waitFor(() => expect(sub.expiration).toBeGreaterThan(expiry), { timeout: 5000 });
    expect(sub.id).toBe(first);
    expect(emulator.requests.some((r) => r.method === "PATCH")).toBe(true);
    emulator.subscriptions.delete(first);
    await vi.waitFor(() => expect(sub.id).not.toBe(first), { timeout: 5000 });
    expect(emulator.subscriptions.get(sub.id)?.resource).toBe("me/events");
    await sub.stop();
  });

  it("rejects bad options before calling Graph", async () => {
    await expect(
      graph.subscribe({ mail: true }, options({ clientState: "" })),
    ).rejects.toBeInstanceOf(ArgumentError);
    await expect(
      graph.subscribe({ mail: true }, options({ clientState: "x".repeat(129) })),
    ).rejects.toBeInstanceOf(ArgumentError);
    await expect(
      graph.subscribe({ mail: true }, options({ notificationUrl: "not a url" })),
    ).rejects.toBeInstanceOf(ArgumentError);
    expect(emulator.requests.filter((r) => r.path.endsWith("/subscriptions"))).toHaveLength(0);
  });

  it("feeds the orchestrator's watch: a notification starts a round", async () => {
    await graph.folder("inbox").sync({});
    await graph.subscribe({ folder: "inbox" }, options());
    const triggers: string[] = [];
    const updated: string[] = [];
    const sub = watch(graph.folder("inbox"), {
      store: createMemoryStateStore(),
      pollIntervalMs: 3600_000,
      debounceMs: 0,
      importer: { update: (o) => void updated.push(o.sourcekey) },
    }).subscribe((r) => triggers.push(r.trigger));
    await vi.waitFor(() => expect(triggers).toEqual(["initial"]));
    const id = emulator.model.receive("inbox", "pushed");
    await emulator.flush();
    await vi.waitFor(() => expect(triggers).toEqual(["initial", "push"]));
    expect(updated).toContain(id);
    sub.unsubscribe();
  });

  it("close() deletes every subscription", async () => {
    await graph.subscribe({ mail: true }, options());
    await graph.subscribe({ contacts: true }, options());
    expect(emulator.subscriptions.size).toBe(2);
    await graph.close();
    expect(emulator.subscriptions.size).toBe(0);
  });
});
