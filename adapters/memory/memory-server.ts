import { randomUUID } from "node:crypto";
/**
 * The reference ICS server: stores → folder trees → items with a read flag, an address book,
 * and a change journal per scope. Every mutation takes the next change number.
 */
import { ArgumentError, ConflictError, NotFoundError } from "../../src/core/errors.js";
import type { EventType, Notification, ObjectType, SyncObject } from "../../src/core/types.js";
import { NotificationHub } from "../../src/notify/hub.js";
import { Journal } from "./memory-journal.js";
import type {
  Fields,
  FolderKind,
  FolderRecord,
  ItemRecord,
  MemoryData,
  MemorySnapshot,
  UserRecord,
} from "./memory-records.js";

export interface MemoryServerOptions {
  /**
   * Keep tombstones for at least this many changes; older states then fail with
   * `StateInvalidError`. Default: keep everything until `compact()`.
   */
  retention?: number;
  /** Changes per page of a sync (default 500). */
  pageSize?: number;
  /** Restore a server saved with `snapshot()`. */
  from?: MemorySnapshot;
  /**
   * Sync with the engine's read-ahead (`ChangeSource.readAhead`), as HTTP adapters do: page N+1 is
   * fetched while page N is imported. Default false; useful to test an importer under it.
   */
  readAhead?: boolean;
  /**
   * What identifies this server in states (a state of another server is a `StateError`).
   * Default: random, or the snapshot's when restoring. Give a fixed one when every process
   * rebuilds the same server from a generator, as the CLI's `memory:demo` source does.
   */
  epoch?: string;
}

const FOLDER_KINDS: readonly FolderKind[] = ["mail", "calendar", "contacts"];

/** The server's data and journals; the public classes in index.ts are views over it. */
export class MemoryCore {
  /** Identifies this server (and servers restored from its snapshots) in states. */
  epoch: string = randomUUID();
  cn = 0;
  floor = 0;
  seq = 0;
  readonly pageSize: number;
  readonly retention: number | undefined;
  readonly readAhead: boolean;
  readonly stores = new Map<string, { name: string; root: string }>();
  readonly folders = new Map<string, FolderRecord>();
  readonly items = new Map<string, ItemRecord>();
  readonly users = new Map<string, UserRecord>();
  /** Items of each live folder. */
  readonly contents = new Map<string, Set<string>>();
  readonly journals = new Map<string, Journal>();
  readonly hubs = new Map<string, NotificationHub<MemoryData>>();

  constructor(options: MemoryServerOptions = {}) {
    const { pageSize = 500, retention } = options;
    if (!(Number.isInteger(pageSize) && pageSize > 0)) {
      throw new ArgumentError(`pageSize must be a positive integer, got ${String(pageSize)}`);
    }
    if (retention !== undefined && !(Number.isInteger(retention) && retention >= 0)) {
      throw new ArgumentError(`retention must be a non-negative integer, got ${String(retention)}`);
    }
    this.pageSize = pageSize;
    this.retention = retention;
    this.readAhead = options.readAhead ?? false;
    if (options.from) this.#restore(options.from);
    if (options.epoch !== undefined) this.epoch = options.epoch;
  }

  journal(scope: string): Journal {
    let j = this.journals.get(scope);
    if (!j) this.journals.set(scope, (j = new Journal()));
    return j;
  }

  hub(scope: string): NotificationHub<MemoryData> {
    let h = this.hubs.get(scope);
    if (!h) this.hubs.set(scope, (h = new NotificationHub()));
    return h;
  }

  // ---- stores and folders -------------------------------------------------------------------

  createStore(name: string): { name: string; root: string } {
    if (typeof name !== "string" || name === "")
      throw new ArgumentError("store name must be a non-empty string");
    if (this.stores.has(name)) throw new ArgumentError(`store "${name}" already exists`);
    const root = this.#nextKey("root");
    const store = { name, root };
    this.stores.set(name, store);
    this.folders.set(root, {
      key: root,
      store: name,
      name: "",
      kind: "mail",
      createdCn: 0,
      contentCn: 0,
    });
    this.contents.set(root, new Set());
    return store;
  }

  store(name: string): { name: string; root: string } {
    const s = this.stores.get(name);
    if (!s) throw new NotFoundError(`no store "${name}"`);
    return s;
  }

  createFolder(
    storeName: string,
    spec: { name: string; kind: FolderKind; parentKey?: string },
  ): FolderRecord {
    const store = this.store(storeName);
    if (!FOLDER_KINDS.includes(spec.kind))
      throw new ArgumentError(`folder kind must be one of ${FOLDER_KINDS.join(", ")}`);
    if (typeof spec.name !== "string" || spec.name === "")
      throw new ArgumentError("folder name must be a non-empty string");
    const parent = this.liveFolder(spec.parentKey ?? store.root);
    if (parent.store !== storeName)
      throw new ArgumentError(`folder ${parent.key} is not in store "${storeName}"`);
    const cn = this.#tick();
    const folder: FolderRecord = {
      key: this.#nextKey("f"),
      store: storeName,
      parent: parent.key,
      name: spec.name,
      kind: spec.kind,
      createdCn: cn,
      contentCn: cn,
    };
    this.folders.set(folder.key, folder);
    this.contents.set(folder.key, new Set());
    this.#recordFolder(folder, cn, "created");
    return folder;
  }

  renameFolder(key: string, name: string): void {
    if (typeof name !== "string" || name === "")
      throw new ArgumentError("folder name must be a non-empty string");
    const folder = this.liveFolder(key, true);
    const cn = this.#tick();
    folder.name = name;
    folder.contentCn = cn;
    this.#recordFolder(folder, cn, "updated");
  }

  moveFolder(key: string, parentKey: string): void {
    const folder = this.liveFolder(key, true);
    const parent = this.liveFolder(parentKey);
    if (parent.store !== folder.store)
      throw new ArgumentError("folders move only within their store");
    for (
      let p: FolderRecord | undefined = parent;
      p;
      p = p.parent ? this.folders.get(p.parent) : undefined
    ) {
      if (p.key === key) throw new ArgumentError(`cannot move folder ${key} into its own subtree`);
    }
    const cn = this.#tick();
    folder.parent = parent.key;
    folder.contentCn = cn;
    folder.movedCn = cn;
    this.#recordFolder(folder, cn, "updated");
    // The subtree moved too: a hierarchy scope it entered (or left) must hear of every folder.
    for (const child of this.#descendants(key)) {
      this.journal(`tree:${child.store}`).record(child.key, this.#tick(), child);
    }
  }

  #descendants(key: string): FolderRecord[] {
    const out: FolderRecord[] = [];
    for (const f of this.folders.values()) {
      if (f.deleted || f.key === key) continue;
      for (let p = f.parent; p !== undefined; p = this.folders.get(p)?.parent) {
        if (p === key) {
          out.push(f);
          break;
        }
      }
    }
    return out;
  }

  /** Deletes a folder with its whole subtree (sub-folders first, each item, then the folder). */
  deleteFolder(key: string, soft = false): void {
    const folder = this.liveFolder(key, true);
    for (const child of [...this.folders.values()]) {
      if (child.parent === key && !child.deleted) this.deleteFolder(child.key, soft);
    }
    for (const itemKey of [...(this.contents.get(key) ?? [])]) this.deleteItem(itemKey, soft);
    const cn = this.#tick();
    folder.deleted = { cn, soft };
    this.contents.delete(key);
    this.#recordFolder(folder, cn, "deleted");
  }

  liveFolder(key: string | undefined, notRoot = false): FolderRecord {
    const folder = key === undefined ? undefined : this.folders.get(key);
    if (!folder || folder.deleted) throw new NotFoundError(`no folder ${JSON.stringify(key)}`);
    if (notRoot && folder.parent === undefined)
      throw new ArgumentError("the root folder can't be changed");
    return folder;
  }

  // ---- items -------------------------------------------------------------------------------

  createItem(folderKey: string, fields: Fields, read = false, key?: string): ItemRecord {
    const folder = this.liveFolder(folderKey, true);
    if (key !== undefined) {
      // Client-chosen keys (two-way sync creates) contain a ":"; generated ones never do.
      if (typeof key !== "string" || !key.includes(":"))
        throw new ArgumentError(
          `a client-chosen item key must contain ":", got ${JSON.stringify(key)}`,
        );
      if (this.items.has(key)) throw new ConflictError(`item ${JSON.stringify(key)} exists`);
    }
    const cn = this.#tick();
    const item: ItemRecord = {
      key: key ?? this.#nextKey("i"),
      store: folder.store,
      parent: folder.key,
      fields: freezeFields(fields),
      read: Boolean(read),
      createdCn: cn,
      contentCn: cn,
      moves: [],
    };
    this.items.set(item.key, item);
    this.contents.get(folder.key)?.add(item.key);
    this.#recordItem(item, cn, [folder.key], "created");
    return item;
  }

  updateItem(key: string, fields: Fields): void {
    const item = this.liveItem(key);
    const cn = this.#tick();
    item.fields = freezeFields(fields);
    item.contentCn = cn;
    this.#recordItem(item, cn, [item.parent], "updated");
  }

  markRead(key: string, read: boolean): void {
    const item = this.liveItem(key);
    if (item.read === read) return;
    const cn = this.#tick();
    item.read = read;
    this.#recordItem(item, cn, [item.parent], "updated");
  }

  moveItem(key: string, toFolderKey: string): void {
    const item = this.liveItem(key);
    const to = this.liveFolder(toFolderKey, true);
    if (to.store !== item.store) throw new ArgumentError("items move only within their store");
    if (to.key === item.parent) return;
    const from = item.parent;
    const cn = this.#tick();
    this.contents.get(from)?.delete(key);
    this.contents.get(to.key)?.add(key);
    item.parent = to.key;
    item.moves.push({ cn, from, to: to.key });
    this.#recordItem(item, cn, [from, to.key], "updated", from);
  }

  deleteItem(key: string, soft = false): void {
    const item = this.liveItem(key);
    const cn = this.#tick();
    item.deleted = { cn, soft };
    this.contents.get(item.parent)?.delete(key);
    this.#recordItem(item, cn, [item.parent], "deleted");
  }

  liveItem(key: string): ItemRecord {
    const item = this.items.get(key);
    if (!item || item.deleted) throw new NotFoundError(`no item ${JSON.stringify(key)}`);
    return item;
  }

  // ---- address book ------------------------------------------------------------------------

  addUser(fields: Fields): UserRecord {
    const cn = this.#tick();
    const user: UserRecord = {
      key: this.#nextKey("u"),
      fields: freezeFields(fields),
      createdCn: cn,
      contentCn: cn,
    };
    this.users.set(user.key, user);
    this.#recordUser(user, cn, "created");
    return user;
  }

  updateUser(key: string, fields: Fields): void {
    const user = this.liveUser(key);
    const cn = this.#tick();
    user.fields = freezeFields(fields);
    user.contentCn = cn;
    this.#recordUser(user, cn, "updated");
  }

  removeUser(key: string): void {
    const user = this.liveUser(key);
    const cn = this.#tick();
    user.deleted = { cn, soft: false };
    this.#recordUser(user, cn, "deleted");
  }

  liveUser(key: string): UserRecord {
    const user = this.users.get(key);
    if (!user || user.deleted) throw new NotFoundError(`no user ${JSON.stringify(key)}`);
    return user;
  }

  // ---- journal maintenance -----------------------------------------------------------------

  /**
   * Drops every tombstone recorded at or before `upTo`; states older than that then fail with
   * `StateInvalidError`. Without `upTo` every state issued so far becomes invalid (as when a
   * real server expires all sync tokens): the compaction takes a change number of its own.
   */
  compact(upTo?: number): void {
    if (upTo === undefined) upTo = ++this.cn;
    if (upTo <= this.floor) return;
    for (const [scope, journal] of this.journals) {
      for (const key of [...journal.keys()]) {
        const cn = journal.latest(key) ?? 0;
        if (cn <= upTo && !this.#presentIn(scope, key)) journal.forget(key);
      }
    }
    for (const map of [this.items, this.folders, this.users] as Map<
      string,
      { deleted?: { cn: number } }
    >[]) {
      for (const [key, rec] of map) if (rec.deleted && rec.deleted.cn <= upTo) map.delete(key);
    }
    this.floor = upTo;
  }

  snapshot(): MemorySnapshot {
    const journals: Record<string, [number, string][]> = {};
    for (const [scope, j] of this.journals) journals[scope] = j.entries();
    return structuredClone({
      version: 1 as const,
      epoch: this.epoch,
      cn: this.cn,
      floor: this.floor,
      seq: this.seq,
      stores: [...this.stores.values()],
      folders: [...this.folders.values()],
      items: [...this.items.values()],
      users: [...this.users.values()],
      journals,
    });
  }

  #restore(s: MemorySnapshot): void {
    if (s?.version !== 1) throw new ArgumentError("not a memory server snapshot (version 1)");
    const copy = structuredClone(s);
    if (copy.epoch !== undefined) this.epoch = copy.epoch;
    this.cn = copy.cn;
    this.floor = copy.floor;
    this.seq = copy.seq;
    for (const st of copy.stores) this.stores.set(st.name, st);
    for (const f of copy.folders) {
      this.folders.set(f.key, f);
      if (!f.deleted) this.contents.set(f.key, new Set());
    }
    for (const i of copy.items) {
      i.fields = freezeFields(i.fields);
      this.items.set(i.key, i);
      if (!i.deleted) this.contents.get(i.parent)?.add(i.key);
    }
    for (const u of copy.users) {
      u.fields = freezeFields(u.fields);
      this.users.set(u.key, u);
    }
    for (const [scope, entries] of Object.entries(copy.journals)) {
      const j = this.journal(scope);
      const records =
        scope === "gab" ? this.users : scope.startsWith("tree:") ? this.folders : this.items;
      for (const [cn, key] of entries.sort((a, b) => a[0] - b[0]))
        j.record(key, cn, records.get(key));
    }
  }

  /** True when `key` is still present in the scope of journal `scope` (not a tombstone). */
  #presentIn(scope: string, key: string): boolean {
    if (scope === "gab") return this.users.get(key)?.deleted === undefined && this.users.has(key);
    if (scope.startsWith("tree:")) {
      const f = this.folders.get(key);
      return f !== undefined && !f.deleted;
    }
    const item = this.items.get(key);
    if (!item || item.deleted) return false;
    if (scope.startsWith("folder:")) return `folder:${item.parent}` === scope;
    if (scope.startsWith("store:")) return `store:${item.store}` === scope;
    return true;
  }

  #tick(): number {
    const cn = ++this.cn;
    const r = this.retention;
    if (r !== undefined && cn - this.floor > 2 * r + 64) this.compact(cn - r - 1);
    return cn;
  }

  #nextKey(prefix: string): string {
    return `${prefix}${(++this.seq).toString(36)}`;
  }

  #recordFolder(folder: FolderRecord, cn: number, event: EventType): void {
    this.journal(`tree:${folder.store}`).record(folder.key, cn, folder);
    const object =
      event === "deleted"
        ? { sourcekey: folder.key, type: "folder" as const, parentKey: folder.parent }
        : folderObject(folder);
    this.#notify("folder", event, object, [
      `folder:${folder.parent}`,
      `store:${folder.store}`,
      "server",
    ]);
  }

  #recordItem(
    item: ItemRecord,
    cn: number,
    folders: string[],
    event: EventType,
    movedFrom?: string,
  ): void {
    for (const f of folders) this.journal(`folder:${f}`).record(item.key, cn, item);
    this.journal(`store:${item.store}`).record(item.key, cn, item);
    this.journal("server").record(item.key, cn, item);
    if (!this.#anyObserved(folders, item.store)) return;
    const object =
      event === "deleted"
        ? { sourcekey: item.key, type: "item" as const, parentKey: item.parent }
        : itemObject(item);
    if (movedFrom !== undefined) {
      this.#notify("item", "deleted", { sourcekey: item.key, type: "item", parentKey: movedFrom }, [
        `folder:${movedFrom}`,
      ]);
      this.#notify("item", "created", object, [`folder:${item.parent}`]);
      this.#notify("item", "updated", object, [`store:${item.store}`, "server"]);
      return;
    }
    this.#notify("item", event, object, [`folder:${item.parent}`, `store:${item.store}`, "server"]);
  }

  #recordUser(user: UserRecord, cn: number, event: EventType): void {
    this.journal("gab").record(user.key, cn, user);
    const object =
      event === "deleted"
        ? { sourcekey: user.key, type: "user" as const }
        : {
            sourcekey: user.key,
            type: "user" as const,
            changeKey: String(user.contentCn),
            data: { fields: user.fields },
          };
    this.#notify("user", event, object, ["server"]);
  }

  #anyObserved(folders: string[], store: string): boolean {
    if (this.hubs.get("server")?.observed || this.hubs.get(`store:${store}`)?.observed) return true;
    return folders.some((f) => this.hubs.get(`folder:${f}`)?.observed);
  }

  #notify(
    objectType: ObjectType,
    eventType: EventType,
    object: Notification<MemoryData>["object"],
    scopes: string[],
  ): void {
    for (const scope of scopes) {
      const hub = this.hubs.get(scope);
      if (hub?.observed) hub.emit({ objectType, eventType, object, scope });
    }
  }
}

export function itemObject(item: ItemRecord): SyncObject<MemoryData> {
  return {
    sourcekey: item.key,
    type: "item",
    parentKey: item.parent,
    changeKey: String(item.contentCn),
    data: { fields: item.fields, read: item.read },
  };
}

export function folderObject(folder: FolderRecord): SyncObject<MemoryData> {
  return {
    sourcekey: folder.key,
    type: "folder",
    parentKey: folder.parent,
    changeKey: String(folder.contentCn),
    data: { name: folder.name, kind: folder.kind },
  };
}

function freezeFields(fields: Fields): Fields {
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
    throw new ArgumentError("fields must be a plain object");
  }
  return Object.isFrozen(fields) ? fields : Object.freeze({ ...fields });
}
