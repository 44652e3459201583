import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProtocolError, StateInvalidError } from "../../src/core/errors.js";
import { checkStateErrors } from "../../src/testing/index.js";
import { GoogleEmulator } from "./emulator.js";
import { account, queries, recorder } from "./helpers.js";

let emulator: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
  emulator.options.maxPageSize = 2;
  emulator.options.peopleExpiredStatus = 400;
});

const CONNECTIONS = /\/people\/me\/connections$/;

describe("People connections", () => {
  it("requests a sync token, pages, and maps metadata.deleted to a delete keyed on resourceName", async () => {
    const google = account(emulator);
    const names = ["ann", "bob", "cy"].map((n) => emulator.model.addPerson(n));
    const r = recorder();
    const contacts = google.contacts();
    const state = await contacts.sync(r.importer);
    expect(r.items.size).toBe(3);
    expect(r.items.get(names[0] as string)?.type).toBe("user");
    const qs = queries(emulator, CONNECTIONS);
    expect(qs.every((q) => q.get("requestSyncToken") === "true" && q.get("personFields"))).toBe(
      true,
    );
    emulator.model.deletePerson(names[1] as string);
    emulator.model.updatePerson(names[2] as string, "cyd");
    await contacts.sync(r.importer, state);
    expect(r.log).toContain(`delete ${names[1]}`);
    expect(r.items.has(names[1] as string)).toBe(false);
    expect(
      (r.items.get(names[2] as string)?.data as { names?: { displayName: string }[] } | undefined)
        ?.names?.[0]?.displayName,
    ).toBe("cyd");
    await checkStateErrors(contacts);
    await google.close();
  });

  for (const status of [400, 410] as const) {
    it(`turns EXPIRED_SYNC_TOKEN (HTTP ${status}) into StateInvalidError`, async () => {
      emulator.options.peopleExpiredStatus = status;
      const google = account(emulator);
      emulator.model.addPerson("ann");
      const state = await google.contacts().sync({});
      emulator.model.expire();
      await expect(google.contacts().sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
      await google.close();
    });
  }

  it("refuses a state made with other personFields", async () => {
    const a = account(emulator);
    const state = await a.contacts().sync({});
    const b = account(emulator, { personFields: "names" });
    await expect(b.contacts().sync({}, state)).rejects.toThrow(/personFields/);
    await a.close();
    await b.close();
  });
});

const HISTORY = /\/gmail\/v1\/users\/me\/history$/;

describe("Gmail", () => {
  it("full-syncs messages with the read flag, then follows history: added, deleted, read/unread", async () => {
    const google = account(emulator);
    const m1 = emulator.model.receiveMessage("one", { unread: true });
    const m2 = emulator.model.receiveMessage("two", { unread: false });
    const m3 = emulator.model.receiveMessage("three");
    const r = recorder();
    const mail = google.mail();
    const state = await mail.sync(r.importer);
    expect(r.items.size).toBe(3);
    const requests = emulator.requests.map((x) => x.path);
    // The historyId is recorded BEFORE listing.
    expect(requests.indexOf("/gmail/v1/users/me/profile")).toBeLessThan(
      requests.indexOf("/gmail/v1/users/me/messages"),
    );
    emulator.model.setLabel(m1, "UNREAD", false);
    emulator.model.setLabel(m2, "UNREAD", true);
    emulator.model.deleteMessage(m3);
    const m4 = emulator.model.receiveMessage("four");
    emulator.model.setLabel(m4, "STARRED", true);
    await mail.sync(r.importer, state);
    expect(r.reads.get(m1)).toBe(true);
    expect(r.reads.get(m2)).toBe(false);
    expect(r.items.has(m3)).toBe(false);
    expect((r.items.get(m4)?.data as { labelIds?: string[] } | undefined)?.labelIds).toContain(
      "STARRED",
    );
    const hq = queries(emulator, HISTORY)[0];
    expect(hq?.getAll("historyTypes").sort()).toEqual([
      "labelAdded",
      "labelRemoved",
      "messageAdded",
      "messageDeleted",
    ]);
    await google.close();
  });

  it("misses nothing that arrives while the full sync is listing", async () => {
    const google = account(emulator, { prefetch: false });
    for (let i = 0; i < 4; i++) emulator.model.receiveMessage(`m${i}`);
    let late = "";
    const r = recorder();
    const importer = {
      ...r.importer,
      update: (
        obj: Parameters<NonNullable<typeof r.importer.update>>[0],
        flags: { created: boolean },
      ) => {
        if (!late) late = emulator.model.receiveMessage("late");
        return r.importer.update?.(obj, flags);
      },
    };
    const mail = google.mail();
    const state = await mail.sync(importer);
    await mail.sync(r.importer, state);
    expect(r.items.has(late)).toBe(true);
    expect(r.items.size).toBe(5);
    await google.close();
  });

  it("a message added then deleted before it is fetched becomes a delete, not an error", async () => {
    const google = account(emulator);
    const mail = google.mail();
    const state = await mail.sync({});
    const m = emulator.model.receiveMessage("gone");
    emulator.model.deleteMessage(m);
    const r = recorder();
    await mail.sync(r.importer, state);
    expect(r.log).toEqual([`delete ${m}`, `delete ${m}`]);
    await google.close();
  });

  it("bounds the full sync with daysWithin", async () => {
    const google = account(emulator);
    const fresh = emulator.model.receiveMessage("fresh");
    emulator.model.receiveMessage("old", { ageDays: 30 });
    const r = recorder();
    await google.mail().sync(r.importer, undefined, { window: { daysWithin: 7 } });
    expect([...r.items.keys()]).toEqual([fresh]);
    expect(queries(emulator, /\/messages$/)[0]?.get("q")).toBe("newer_than:7d");
    await google.close();
  });

  it("turns 404 on an old startHistoryId into StateInvalidError", async () => {
    const google = account(emulator);
    const state = await google.mail().sync({});
    emulator.model.expire();
    await expect(google.mail().sync({}, state)).rejects.toBeInstanceOf(StateInvalidError);
    await google.close();
  });

  it("rejects a malformed history page with ProtocolError naming the field", async () => {
    const google = account(emulator);
    const state = await google.mail().sync({});
    emulator.inject({
      path: HISTORY,
      status: 200,
      body: { history: [{ id: "1", messagesAdded: [{ message: {} }] }], historyId: "9" },
    });
    const err = await google
      .mail()
      .sync({}, state)
      .catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toContain("history[0].messagesAdded[0].message.id");
    await checkStateErrors(google.mail());
    await google.close();
  });
});
