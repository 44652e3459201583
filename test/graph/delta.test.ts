import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_MESSAGE_SELECT } from "../../adapters/graph/index.js";
import {
  ProtocolError,
  StateError,
  StateInvalidError,
  TransientError,
} from "../../src/core/errors.js";
import { encodeState } from "../../src/core/state.js";
import { GraphEmulator } from "./emulator.js";
import { account, recorder } from "./helpers.js";

let emulator: GraphEmulator;
beforeAll(async () => {
  emulator = await GraphEmulator.start();
});
afterAll(async () => emulator.close());
beforeEach(() => {
  emulator.reset();
  emulator.options = { maxPageSize: 2 };
});

const deltaRequests = (path: RegExp) =>
  emulator.requests.filter((r) => path.test(r.path) && r.path.endsWith("/delta"));

describe("request shape", () => {
  it("sends $select and the options only on a round's first request, Prefer on every one", async () => {
    for (let i = 0; i < 5; i++) emulator.model.receive("inbox", `m${i}`);
    const graph = account(emulator, { pageSize: 2 });
    const state = await graph.folder("inbox").sync({});
    await graph.folder("inbox").sync({}, state);
    const requests = deltaRequests(/messages/);
    expect(requests.length).toBeGreaterThanOrEqual(4);
    const [first, ...rest] = requests;
    expect(first?.query.get("$select")?.split(",")).toEqual(["id", ...DEFAULT_MESSAGE_SELECT]);
    for (const r of rest) {
      expect([...r.query.keys()]).toHaveLength(1);
      expect(r.query.has("$skiptoken") || r.query.has("$deltatoken")).toBe(true);
    }
    for (const r of requests) {
      expect(r.prefer).toContain("odata.maxpagesize=2");
      expect(r.prefer).toContain('IdType="ImmutableId"');
    }
    await graph.close();
  });

  it("takes a configured $select", async () => {
    emulator.model.receive("inbox", "x");
    const graph = account(emulator, { messageSelect: ["subject", "isRead"] });
    const r = recorder();
    await graph.folder("inbox").sync(r.importer);
    expect(deltaRequests(/messages/)[0]?.query.get("$select")).toBe("id,subject,isRead");
    expect(Object.keys(r.items.values().next().value?.data as object).sort()).toEqual(
      ["@odata.etag", "id", "isRead", "subject"].sort(),
    );
    await graph.close();
  });

  it("keeps paging through empty pages that carry a nextLink", async () => {
    emulator.options.emptyPageEvery = 2;
    for (let i = 0; i < 5; i++) emulator.model.receive("inbox", `m${i}`);
    const graph = account(emulator);
    const r = recorder();
    const outcome = await graph.folder("inbox").exportChanges(r.importer);
    expect(r.items.size).toBe(5);
    expect(outcome.pages).toBeGreaterThan(3);
    await graph.close();
  });
});

describe("message changes", () => {
  it("an isRead-only update carrying only isRead is read(), never a half-empty update", async () => {
    emulator.options.sparse = "read";
    const id = emulator.model.receive("inbox", "hello");
    const graph = account(emulator);
    const r = recorder();
    const state = await graph.folder("inbox").sync(r.importer);
    emulator.model.updateMessage(id, { isRead: true });
    r.log.length = 0;
    await graph.folder("inbox").sync(r.importer, state);
    expect(r.log).toEqual([`read ${id} true`]);
    expect((r.items.get(id)?.data as { subject?: string } | undefined)?.subject).toBe("hello");
    await graph.close();
  });

  it("a sparse update of other fields is fetched whole", async () => {
    emulator.options.sparse = "all";
    const id = emulator.model.receive("inbox", "hello");
    const graph = account(emulator);
    const r = recorder();
    const state = await graph.folder("inbox").sync(r.importer);
    emulator.model.updateMessage(id, { subject: "changed" });
    await graph.folder("inbox").sync(r.importer, state);
    const data = r.items.get(id)?.data as Record<string, unknown>;
    expect(data.subject).toBe("changed");
    expect(data.from).toBeDefined();
    expect(emulator.requests.some((q) => q.path.endsWith(`/messages/${id}`))).toBe(true);
    await graph.close();
  });

  it("a full update of isRead reaches the importer with the new flag in data", async () => {
    const id = emulator.model.receive("inbox", "hello");
    const graph = account(emulator);
    const r = recorder();
    const state = await graph.folder("inbox").sync(r.importer);
    emulator.model.updateMessage(id, { isRead: true });
    await graph.folder("inbox").sync(r.importer, state);
    expect((r.items.get(id)?.data as { isRead?: boolean } | undefined)?.isRead).toBe(true);
    await graph.close();
  });

  it("a message moved out of a folder scope is a delete there and new in the other (same id)", async () => {
    const id = emulator.model.receive("inbox", "hello");
    const graph = account(emulator);
    const inbox = recorder();
    const archive = recorder();
    const s1 = await graph.folder("inbox").sync(inbox.importer);
    const s2 = await graph.folder("archive").sync(archive.importer);
    emulator.model.moveMessage(id, "archive");
    await graph.folder("inbox").sync(inbox.importer, s1);
    await graph.folder("archive").sync(archive.importer, s2);
    expect(inbox.items.has(id)).toBe(false);
    expect(archive.items.get(id)?.parentKey).toBe("archive");
    await graph.close();
  });
});

describe("the 410 family", () => {
  for (const mode of [
    "syncStateNotFound",
    "resyncRequired",
    "syncStateInvalid",
    "location",
  ] as const) {
    it(`${mode} → StateInvalidError`, async () => {
      emulator.model.receive("inbox", "x");
      const graph = account(emulator);
      const state = await graph.folder("inbox").sync({});
      emulator.model.expire(mode);
      await expect(graph.folder("inbox").sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
      await graph.close();
    });
  }

  it("mid-paging: a 410 on the next page rejects the round; the state never moved past it", async () => {
    for (let i = 0; i < 6; i++) emulator.model.receive("inbox", `m${i}`);
    const graph = account(emulator, { prefetch: false });
    let checkpoint: string | undefined;
    const sync = graph.folder("inbox").sync(
      {
        update: () => {
          if (!checkpoint) return;
          emulator.inject({ path: /delta$/, status: 410, code: "syncStateNotFound" });
        },
      },
      undefined,
      { onCheckpoint: (s) => void (checkpoint ??= s) },
    );
    await expect(sync).rejects.toBeInstanceOf(StateInvalidError);
    await graph.close();
  });

  it("a token ahead of the server (restored backup) → StateInvalidError", async () => {
    emulator.model.receive("inbox", "x");
    const graph = account(emulator);
    const state = await graph.folder("inbox").sync({});
    emulator.reset();
    await expect(graph.folder("inbox").sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
    await graph.close();
  });
});

describe("throttling", () => {
  it("429 and 503 with Retry-After are retried", async () => {
    emulator.model.receive("inbox", "x");
    emulator.inject({
      path: /delta$/,
      status: 429,
      code: "TooManyRequests",
      headers: { "retry-after": "0" },
    });
    emulator.inject({
      path: /delta$/,
      status: 503,
      code: "ServiceUnavailable",
      headers: { "retry-after": "0" },
    });
    const graph = account(emulator);
    const r = recorder();
    await graph.folder("inbox").sync(r.importer);
    expect(r.items.size).toBe(1);
    await graph.close();
  });

  it("a Retry-After longer than the client's cap is a TransientError carrying it (the orchestrator waits)", async () => {
    emulator.inject({
      path: /delta$/,
      status: 429,
      code: "ApplicationThrottled",
      headers: { "retry-after": "30" },
    });
    const graph = account(emulator);
    const error = await graph
      .folder("inbox")
      .sync({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).retryAfterMs).toBe(30_000);
    await graph.close();
  });

  it("at most 4 requests in flight per mailbox, shared by every scope of the account", async () => {
    emulator.options = { maxPageSize: 2, latencyMs: 15, maxConcurrent: 4 };
    const m = emulator.model;
    for (let f = 0; f < 6; f++) {
      const folder = m.addFolder(`f${f}`);
      for (let i = 0; i < 3; i++) m.receive(folder, `m${i}`);
    }
    for (let i = 0; i < 4; i++) m.addEvent("primary", "e", i);
    for (let i = 0; i < 4; i++) m.addContact(`c${i}`);
    const graph = account(emulator, { pageSize: 2 });
    await Promise.all([
      graph.mail().sync({}),
      graph.calendar("primary").sync({}),
      graph.contacts().sync({}),
      graph.folder("inbox").sync({}),
      graph.mailFolders().sync({}),
    ]);
    expect(emulator.maxInFlight).toBeGreaterThan(1);
    expect(emulator.maxInFlight).toBeLessThanOrEqual(4);
    await graph.close();
  });
});

describe("origins and states", () => {
  it("a paging link to another host is refused before anything follows it", async () => {
    for (let i = 0; i < 4; i++) emulator.model.receive("inbox", `m${i}`);
    emulator.options.linkOrigin = "http://evil.example";
    const graph = account(emulator);
    await expect(graph.folder("inbox").sync({})).rejects.toBeInstanceOf(ProtocolError);
    await graph.close();
  });

  it("a state whose deltaLink names another host is a StateError before any request", async () => {
    const graph = account(emulator);
    const state = encodeState({
      adapter: "graph",
      scope: "folder:inbox",
      cursor: { l: "https://evil.example/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=x" },
    });
    const before = emulator.requests.length;
    await expect(graph.folder("inbox").sync({}, state)).rejects.toBeInstanceOf(StateError);
    expect(emulator.requests.length).toBe(before);
    await graph.close();
  });
});

describe("pages", () => {
  const deltaLink = () =>
    `${emulator.baseUrl}me/mailFolders/inbox/messages/delta?$deltatoken=injected`;
  /** A message with every selected property: nothing to fetch. */
  const full = (id: string) => ({
    id,
    ...Object.fromEntries(DEFAULT_MESSAGE_SELECT.map((f) => [f, null])),
  });

  it("a malformed item is a ProtocolError naming it; nothing of its page is imported", async () => {
    for (let i = 0; i < 3; i++) emulator.model.receive("inbox", `m${i}`);
    const graph = account(emulator);
    const state = await graph.folder("inbox").sync({});
    const cases: [unknown, RegExp][] = [
      [{ id: 7 }, /graph\.messages\.delta.*at value\[1\]\.id:/],
      ["not an object", /at value\[1\]:/],
      [{ id: "b", "@removed": "gone" }, /at value\[1\]\.@removed:/],
    ];
    for (const [item, message] of cases) {
      emulator.inject({
        path: /messages\/delta$/,
        json: { value: [full("a"), item], "@odata.deltaLink": deltaLink() },
      });
      const seen = recorder();
      const error = await graph
        .folder("inbox")
        .sync(seen.importer, state, { onCheckpoint: () => expect.fail("state moved") })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProtocolError);
      expect(String((error as Error).message)).toMatch(message);
      expect(seen.log).toEqual([]);
    }
    await graph.close();
  });
});
