import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { runSync } from "../../src/orchestrator/run-sync.js";
import { createSqliteMirror } from "../../src/orchestrator/sqlite-mirror.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";

describe("SQLite mirror", () => {
  it("keeps source, stable id, created/updated locally and updated-at-source; follows reads and deletes", async () => {
    const server = createMemoryServer();
    const store = server.createStore("alice");
    const inbox = store.createFolder({ name: "Inbox", kind: "mail" });
    const a = inbox.createItem({ subject: "a" });
    const b = inbox.createItem({ subject: "b" }, { read: true });
    const db = new Database(":memory:");
    const mirror = createSqliteMirror(db, { source: "memory:alice" });
    const states = createMemoryStateStore();
    await runSync(inbox, { ...mirror.callbacks, store: states });
    const before = mirror.get(a);
    expect(before).toMatchObject({
      source: "memory:alice",
      sourcekey: a,
      type: "item",
      parentKey: inbox.sourcekey,
      isRead: false,
      updatedAtSource: "memory:alice",
      data: { fields: { subject: "a" }, read: false },
    });
    expect(before?.id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 5));
    server.updateItem(a, { subject: "a2" });
    server.markRead(a, true);
    server.deleteItem(b);
    await runSync(inbox, { ...mirror.callbacks, store: states });
    const after = mirror.get(a);
    expect(after?.id).toBe(before?.id);
    expect(after?.createdLocally).toBe(before?.createdLocally);
    expect((after?.updatedLocally ?? "") > (before?.updatedLocally ?? "")).toBe(true);
    expect(after).toMatchObject({ isRead: true, data: { fields: { subject: "a2" }, read: true } });
    expect(mirror.get(b)).toBeUndefined();
    expect(mirror.count()).toBe(1);
  });

  it("the per-change importer works too, a folder delete cascades and reset clears", async () => {
    const server = createMemoryServer();
    const store = server.createStore("bob");
    const parent = store.createFolder({ name: "P", kind: "mail" });
    store.createFolder({ name: "C", kind: "mail", parentKey: parent.sourcekey });
    const db = new Database(":memory:");
    const mirror = createSqliteMirror(db, { source: "h" });
    const other = createSqliteMirror(db, { source: "other" });
    other.importer.update?.({ sourcekey: "x", type: "item", data: {} }, { created: true });
    const state = await store.subtree.hierarchy.sync(mirror.importer);
    expect(mirror.count()).toBe(2);
    store.deleteFolder(parent.sourcekey);
    await store.subtree.hierarchy.sync(mirror.importer, state);
    expect(mirror.count()).toBe(0);
    mirror.importer.update?.({ sourcekey: "y", type: "item", data: {} }, { created: true });
    mirror.clear();
    expect(mirror.count()).toBe(0);
    expect(other.count()).toBe(1);
  });
});
