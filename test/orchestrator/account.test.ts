import { describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { ArgumentError, NotSupportedError } from "../../src/core/errors.js";
import { syncCalendar, syncContacts, syncEmail } from "../../src/orchestrator/account.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";

describe("syncEmail / syncCalendar / syncContacts", () => {
  const server = createMemoryServer({ pageSize: 4 });
  const store = server.createStore("alice");
  const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
  const calendar = store.createFolder({ name: "Calendar", kind: "calendar" });
  const book = store.createFolder({ name: "Contacts", kind: "contacts" });
  for (let i = 0; i < 9; i++) inbox.createItem({ subject: `m${i}` });
  for (let i = 0; i < 3; i++) calendar.createItem({ summary: `e${i}` });
  for (let i = 0; i < 2; i++) book.createItem({ name: `c${i}` });
  const account = server.account("alice");

  it("sync each scope under its own key, in batches, and go incremental", async () => {
    const states = createMemoryStateStore();
    const seen: string[] = [];
    const onUpdated = (records: { sourcekey: string }[]) => {
      for (const r of records) seen.push(r.sourcekey);
    };
    const mail = await syncEmail(account, { store: states, onUpdated, batchSize: 5 });
    expect(mail).toMatchObject({
      key: "memory:alice:mail",
      updated: 14,
      batches: 3,
      fullSync: true,
    });
    const cal = await syncCalendar(account, calendar.sourcekey, { store: states, onUpdated });
    expect(cal).toMatchObject({ key: `memory:alice:calendar:${calendar.sourcekey}`, updated: 3 });
    const contacts = await syncContacts(account, { store: states, onUpdated });
    expect(contacts).toMatchObject({ key: "memory:alice:contacts", updated: 2 });
    expect(await states.keys()).toEqual(
      [
        `memory:alice:calendar:${calendar.sourcekey}`,
        "memory:alice:contacts",
        "memory:alice:mail",
      ].sort(),
    );
    inbox.createItem({ subject: "new" });
    const again = await syncEmail(account, { store: states, onUpdated, batchSize: 5 });
    expect(again).toMatchObject({ updated: 1, fullSync: false });
  });

  it("a scope the account lacks is NotSupportedError; a window the backend lacks is ArgumentError", async () => {
    await expect(syncContacts({ id: "x" }, { onUpdated() {} })).rejects.toThrow(NotSupportedError);
    await expect(syncEmail({ id: "x" }, { onUpdated() {} })).rejects.toThrow(NotSupportedError);
    await expect(
      syncCalendar(account, calendar.sourcekey, { onUpdated() {}, timeMin: new Date(0), key: "w" }),
    ).rejects.toThrow(ArgumentError);
  });
});
