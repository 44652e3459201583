/**
 * The memory server's write surface for two-way sync. Item writes are conditional on the
 * item's changeKey (its content change number); creates use client-chosen keys, so a create
 * replayed after a crash meets its own item (`ConflictError`, then `applied`) instead of a copy.
 */
import { ArgumentError, ConflictError, NotFoundError } from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import { stableJson } from "../../src/two-way/log.js";
import type { OutboxEntry, WriteResult, WriteTarget } from "../../src/two-way/types.js";
import type { MemoryServer } from "./index.js";
import type { Fields, MemoryItemData } from "./memory-records.js";

/**
 * The items of a folder (and the folders of its store it moves them to) as a `WriteTarget`.
 * Entry data has the shape the pull delivers, `{ fields, read? }` (`read` is optional: read
 * flags may also go through `read` entries).
 * @example
 * const target = memoryWriteTarget(server, inbox.sourcekey);
 * await push(target, outbox, { pair: "memory:alice/inbox" });
 */
export function memoryWriteTarget(server: MemoryServer, folderKey: string): WriteTarget {
  const object = (key: string): SyncObject<MemoryItemData> | undefined => {
    let item: ReturnType<MemoryServer["item"]>;
    try {
      item = server.item(key);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
    return {
      sourcekey: item.sourcekey,
      type: "item",
      parentKey: item.parentKey,
      changeKey: item.changeKey,
      data: { fields: item.fields, read: item.read },
    };
  };
  /** The live item, checked against the entry's base version. */
  const current = (e: OutboxEntry): SyncObject<MemoryItemData> => {
    const obj = object(e.sourcekey);
    if (!obj) throw new NotFoundError(`memory: no item ${JSON.stringify(e.sourcekey)}`);
    if (e.kind !== "create" && e.changeKey !== undefined && obj.changeKey !== e.changeKey) {
      throw new ConflictError(
        `memory: item ${e.sourcekey} is at version ${obj.changeKey}, not ${e.changeKey}`,
      );
    }
    return obj;
  };
  const result = (key: string): WriteResult => {
    const obj = object(key) as SyncObject;
    return { sourcekey: key, changeKey: obj.changeKey, object: obj };
  };
  return {
    id: `memory:${folderKey}`,
    keyFor: (localId) => `local:${localId}`,
    async create(e) {
      const data = checkData(e.data);
      server
        .folder(e.parentKey ?? folderKey)
        .createItem(data.fields, { key: e.sourcekey, read: data.read });
      return result(e.sourcekey);
    },
    async update(e) {
      const data = checkData(e.data);
      const cur = current(e).data;
      if (stableJson(cur.fields) !== stableJson(data.fields)) {
        server.updateItem(e.sourcekey, data.fields);
      }
      if (data.read !== undefined) server.markRead(e.sourcekey, data.read);
      return result(e.sourcekey);
    },
    async delete(e) {
      current(e);
      server.deleteItem(e.sourcekey);
    },
    async move(e) {
      current(e);
      server.moveItem(e.sourcekey, e.parentKey);
      return result(e.sourcekey);
    },
    async read(e) {
      // The read flag is not part of the changeKey (as IMAP without CONDSTORE): setting it is
      // idempotent, so it is written whatever the content version.
      if (!object(e.sourcekey)) throw new NotFoundError(`memory: no item ${e.sourcekey}`);
      server.markRead(e.sourcekey, e.isRead);
      return result(e.sourcekey);
    },
    async fetch(key) {
      return object(key);
    },
    applied(e, remote) {
      const data = remote.data as MemoryItemData;
      switch (e.kind) {
        case "create":
        case "update": {
          const want = e.data as Partial<MemoryItemData>;
          return (
            stableJson(want.fields) === stableJson(data.fields) &&
            (want.read === undefined || want.read === data.read)
          );
        }
        case "move":
          return remote.parentKey === e.parentKey;
        case "read":
          return data.read === e.isRead;
        case "delete":
          return false;
      }
    },
  };
}

function checkData(data: unknown): { fields: Fields; read?: boolean } {
  const d = data as { fields?: unknown; read?: unknown } | null;
  if (d === null || typeof d !== "object" || d.fields === null || typeof d.fields !== "object") {
    throw new ArgumentError("memory: entry data must be { fields, read? }");
  }
  if (d.read !== undefined && typeof d.read !== "boolean") {
    throw new ArgumentError("memory: entry data.read must be a boolean");
  }
  return d as { fields: Fields; read?: boolean };
}
