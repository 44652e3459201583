/**
 * `deltasync/adapters/memory`: the reference ICS server, in process. Servers → stores → folder
 * trees → items with a read flag, plus an address book, with a change journal per scope.
 * Use it to test importers, to demo, and as the model every adapter is held to.
 *
 * @example
 * const server = createMemoryServer();
 * const inbox = server.createStore("alice").createFolder({ name: "Inbox", kind: "mail" });
 * inbox.createItem({ subject: "hello" });
 * const state = await inbox.sync({ update: (obj) => console.log(obj.data) });
 */
import type { Observable, Subscription } from "rxjs";
import { NotFoundError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import { type Account, createSyncable } from "../../src/core/syncable.js";
import type {
  Importer,
  Notification,
  NotificationFilter,
  SyncOptions,
  SyncOutcome,
} from "../../src/core/types.js";
import type { SinkLike, SubscribeOptions } from "../../src/notify/subscribe.js";
import { exportFolder, exportItem, exportUser, journalSource } from "./memory-export.js";
import type {
  Fields,
  FolderKind,
  FolderRecord,
  ItemRecord,
  MemoryData,
  MemorySnapshot,
  UserRecord,
} from "./memory-records.js";
import { MemoryCore, type MemoryServerOptions } from "./memory-server.js";

export type {
  Fields,
  FolderKind,
  MemoryData,
  MemoryFolderData,
  MemoryItemData,
  MemorySnapshot,
  MemoryUserData,
} from "./memory-records.js";
export type { MemoryServerOptions } from "./memory-server.js";
export { memoryWriteTarget } from "./memory-write.js";

const ADAPTER = "memory";

/** Base of every memory scope object: the `Syncable` methods, delegated. */
abstract class SyncableView implements Syncable<MemoryData> {
  protected abstract readonly syncable: Syncable<MemoryData>;
  get adapter() {
    return this.syncable.adapter;
  }
  get scope() {
    return this.syncable.scope;
  }
  get supportsPush() {
    return true;
  }
  sync(
    importer: Importer<MemoryData>,
    state?: string | null,
    options?: SyncOptions,
  ): Promise<string> {
    return this.syncable.sync(importer, state, options);
  }
  exportChanges(
    importer: Importer<MemoryData>,
    state?: string | null,
    options?: SyncOptions,
  ): Promise<SyncOutcome> {
    return this.syncable.exportChanges(importer, state, options);
  }
  notifications(filter?: NotificationFilter): Observable<Notification<MemoryData>> {
    return this.syncable.notifications(filter);
  }
  subscribe(
    sink: SinkLike<MemoryData>,
    filter?: NotificationFilter,
    options?: SubscribeOptions<MemoryData>,
  ): Subscription {
    return this.syncable.subscribe(sink, filter, options);
  }
}

/** A folder (mail folder, calendar or address book). Syncing it exports its items. */
export class MemoryFolder extends SyncableView {
  protected readonly syncable: Syncable<MemoryData>;
  /** The folders below this one: `folder.hierarchy.sync(importer, state)`. */
  readonly hierarchy: Syncable<MemoryData>;

  constructor(
    private readonly core: MemoryCore,
    readonly sourcekey: string,
  ) {
    super();
    const journalId = `folder:${sourcekey}`;
    this.syncable = createSyncable<MemoryData>({
      adapter: ADAPTER,
      scope: journalId,
      source: journalSource({
        name: journalId,
        pageSize: core.pageSize,
        readAhead: core.readAhead,
        check: () => void core.liveFolder(sourcekey),
        journal: () => core.journal(journalId),
        head: () => core.cn,
        epoch: () => core.epoch,
        floor: () => core.floor,
        exportKey: (key, ref, base, nothingImported) => {
          const item = ref as ItemRecord | undefined;
          const here = item !== undefined && !item.deleted && item.parent === sourcekey;
          const arrived = here ? Math.max(item.createdCn, item.moves.at(-1)?.cn ?? 0) : 0;
          return exportItem(item, key, here, base, nothingImported, arrived);
        },
      }),
      notifications: (f) => core.hub(journalId).stream(f),
    });
    const store = this.#record().store;
    const treeId = `tree:${store}`;
    this.hierarchy = createSyncable<MemoryData>({
      adapter: ADAPTER,
      scope: `hierarchy:${sourcekey}`,
      source: journalSource({
        name: `hierarchy:${sourcekey}`,
        pageSize: core.pageSize,
        readAhead: core.readAhead,
        check: () => void core.liveFolder(sourcekey),
        journal: () => core.journal(treeId),
        head: () => core.cn,
        epoch: () => core.epoch,
        floor: () => core.floor,
        exportKey: (key, ref, base, nothingImported) => {
          // The scope's own folder is not below itself: its renames and moves are not ours.
          if (key === sourcekey) return undefined;
          const folder = ref as FolderRecord | undefined;
          const inside = folder !== undefined && !folder.deleted && this.#contains(folder);
          if (!inside && folder !== undefined && !this.#mayHaveContained(folder, base)) {
            return undefined; // gone from elsewhere in the store: never part of this scope
          }
          return exportFolder(inside ? folder : undefined, key, base, nothingImported);
        },
      }),
      notifications: (f) => core.hub(`store:${store}`).stream({ ...f, objectTypes: ["folder"] }),
    });
  }

  #record(): FolderRecord {
    return this.core.liveFolder(this.sourcekey);
  }

  #contains(folder: FolderRecord): boolean {
    for (let p = folder.parent; p !== undefined; p = this.core.folders.get(p)?.parent) {
      if (p === this.sourcekey) return true;
    }
    return false;
  }

  /**
   * Whether `folder` could have been below this one at change number `base`: yes when its parent
   * chain (kept by deleted records too) passes through this folder, or when anything on that
   * chain moved since `base` (the chain then says nothing about the past).
   */
  #mayHaveContained(folder: FolderRecord, base: number): boolean {
    for (let f: FolderRecord | undefined = folder; f; ) {
      if ((f.movedCn ?? 0) > base) return true;
      if (f.parent === undefined) return false;
      if (f.parent === this.sourcekey) return true;
      f = this.core.folders.get(f.parent);
    }
    return true;
  }

  get name(): string {
    return this.#record().name;
  }
  get kind(): FolderKind {
    return this.#record().kind;
  }
  get parentKey(): string | undefined {
    return this.#record().parent;
  }

  /** Kopano's `sync_hierarchy`: the folders created, renamed, moved and deleted below this one. */
  syncHierarchy(
    importer: Importer<MemoryData>,
    state?: string | null,
    options?: SyncOptions,
  ): Promise<string> {
    return this.hierarchy.sync(importer, state, options);
  }

  /**
   * Creates an item in this folder and returns its sourcekey. `key`: a client-chosen sourcekey
   * (must contain ":"); an existing one is a `ConflictError` (two-way sync's idempotent create).
   */
  createItem(fields: Fields, options: { read?: boolean; key?: string } = {}): string {
    return this.core.createItem(this.sourcekey, fields, options.read, options.key).key;
  }

  /** Creates a sub-folder. */
  createFolder(spec: { name: string; kind?: FolderKind }): MemoryFolder {
    const rec = this.core.createFolder(this.#record().store, {
      name: spec.name,
      kind: spec.kind ?? this.#record().kind,
      parentKey: this.sourcekey,
    });
    return new MemoryFolder(this.core, rec.key);
  }

  /** The items in this folder now (the truth a mirror is compared with). */
  items(): { sourcekey: string; fields: Fields; read: boolean }[] {
    return [...(this.core.contents.get(this.sourcekey) ?? [])].map((k) => {
      const item = this.core.liveItem(k);
      return { sourcekey: k, fields: item.fields, read: item.read };
    });
  }
}

/** A user's store: a folder tree under `subtree`. */
export class MemoryStore extends SyncableView {
  protected readonly syncable: Syncable<MemoryData>;
  /** The root folder; `store.subtree.syncHierarchy(importer, state)` syncs the whole tree. */
  readonly subtree: MemoryFolder;

  constructor(
    private readonly core: MemoryCore,
    readonly name: string,
  ) {
    super();
    const journalId = `store:${name}`;
    this.syncable = createSyncable<MemoryData>({
      adapter: ADAPTER,
      scope: journalId,
      source: itemScopeSource(core, journalId, (item) => item.store === name),
      notifications: (f) => core.hub(journalId).stream(f),
    });
    this.subtree = new MemoryFolder(core, core.store(name).root);
  }

  /** Every item of the store (store-wide ICS). Same as syncing the store itself. */
  get items(): Syncable<MemoryData> {
    return this.syncable;
  }

  createFolder(spec: { name: string; kind: FolderKind; parentKey?: string }): MemoryFolder {
    return new MemoryFolder(this.core, this.core.createFolder(this.name, spec).key);
  }

  folder(key: string): MemoryFolder {
    const rec = this.core.liveFolder(key);
    if (rec.store !== this.name)
      throw new NotFoundError(`no folder ${key} in store "${this.name}"`);
    return new MemoryFolder(this.core, key);
  }

  /** The live folders of the store, root excluded. */
  folders(): { sourcekey: string; parentKey: string; name: string; kind: FolderKind }[] {
    const out = [];
    for (const f of this.core.folders.values()) {
      if (f.store === this.name && !f.deleted && f.parent !== undefined)
        out.push({ sourcekey: f.key, parentKey: f.parent, name: f.name, kind: f.kind });
    }
    return out;
  }

  renameFolder(key: string, name: string): void {
    this.core.renameFolder(key, name);
  }
  moveFolder(key: string, parentKey: string): void {
    this.core.moveFolder(key, parentKey);
  }
  /** Deletes the folder and everything below it. */
  deleteFolder(key: string, options: { soft?: boolean } = {}): void {
    this.core.deleteFolder(key, options.soft ?? false);
  }
}

/** The memory server: server-wide ICS (`sync`), the address book (`syncGab`) and mutations. */
export class MemoryServer extends SyncableView {
  protected readonly syncable: Syncable<MemoryData>;
  /** The address book: `server.gab.sync(importer, state)` or `server.syncGab(...)`. */
  readonly gab: Syncable<MemoryData>;
  readonly #core: MemoryCore;

  constructor(options: MemoryServerOptions = {}) {
    super();
    const core = new MemoryCore(options);
    this.#core = core;
    this.syncable = createSyncable<MemoryData>({
      adapter: ADAPTER,
      scope: "server",
      source: itemScopeSource(core, "server", () => true),
      notifications: (f) => core.hub("server").stream(f),
    });
    this.gab = createSyncable<MemoryData>({
      adapter: ADAPTER,
      scope: "gab",
      source: journalSource({
        name: "gab",
        pageSize: core.pageSize,
        readAhead: core.readAhead,
        journal: () => core.journal("gab"),
        head: () => core.cn,
        epoch: () => core.epoch,
        floor: () => core.floor,
        exportKey: (key, ref, base, nothingImported) =>
          exportUser(ref as UserRecord | undefined, key, base, nothingImported),
      }),
      notifications: (f) => core.hub("server").stream({ ...f, objectTypes: ["user"] }),
    });
  }

  /** Server-wide ICS: item changes of every folder of every store. Same as `sync`. */
  get items(): Syncable<MemoryData> {
    return this.syncable;
  }

  /** Kopano's `sync_gab`. */
  syncGab(
    importer: Importer<MemoryData>,
    state?: string | null,
    options?: SyncOptions,
  ): Promise<string> {
    return this.gab.sync(importer, state, options);
  }

  /** The current change number (grows with every mutation). */
  get changeNumber(): number {
    return this.#core.cn;
  }

  createStore(name: string): MemoryStore {
    this.#core.createStore(name);
    return new MemoryStore(this.#core, name);
  }
  store(name: string): MemoryStore {
    this.#core.store(name);
    return new MemoryStore(this.#core, name);
  }
  stores(): string[] {
    return [...this.#core.stores.keys()];
  }
  folder(key: string): MemoryFolder {
    this.#core.liveFolder(key);
    return new MemoryFolder(this.#core, key);
  }

  updateItem(key: string, fields: Fields): void {
    this.#core.updateItem(key, fields);
  }
  /** Deletes an item; a soft delete is exported with `{ soft: true }`. */
  deleteItem(key: string, options: { soft?: boolean } = {}): void {
    this.#core.deleteItem(key, options.soft ?? false);
  }
  /** Moves an item to another folder of its store. */
  moveItem(key: string, toFolderKey: string): void {
    this.#core.moveItem(key, toFolderKey);
  }
  markRead(key: string, read: boolean): void {
    this.#core.markRead(key, read);
  }
  /** The item as it is now; `changeKey` is the version its sync exports (read flags aside). */
  item(key: string): {
    sourcekey: string;
    parentKey: string;
    changeKey: string;
    fields: Fields;
    read: boolean;
  } {
    const i = this.#core.liveItem(key);
    return {
      sourcekey: i.key,
      parentKey: i.parent,
      changeKey: String(i.contentCn),
      fields: i.fields,
      read: i.read,
    };
  }
  /** Every live item of the server. */
  allItems(): {
    sourcekey: string;
    parentKey: string;
    store: string;
    fields: Fields;
    read: boolean;
  }[] {
    const out = [];
    for (const i of this.#core.items.values())
      if (!i.deleted)
        out.push({
          sourcekey: i.key,
          parentKey: i.parent,
          store: i.store,
          fields: i.fields,
          read: i.read,
        });
    return out;
  }

  addUser(fields: Fields): string {
    return this.#core.addUser(fields).key;
  }
  updateUser(key: string, fields: Fields): void {
    this.#core.updateUser(key, fields);
  }
  removeUser(key: string): void {
    this.#core.removeUser(key);
  }
  users(): { sourcekey: string; fields: Fields }[] {
    const out = [];
    for (const u of this.#core.users.values())
      if (!u.deleted) out.push({ sourcekey: u.key, fields: u.fields });
    return out;
  }

  /**
   * Drops the journal's tombstones up to now (or `upTo`): states made before then fail with
   * `StateInvalidError`, as an expired sync token does on a real server.
   */
  compact(upTo?: number): void {
    this.#core.compact(upTo);
  }

  /** The whole server as JSON-safe data; `createMemoryServer({ from })` restores it. */
  snapshot(): MemorySnapshot {
    return this.#core.snapshot();
  }

  /** The orchestrator's view of one store: mail = every item of the store. */
  account(storeName: string): Account<MemoryData> {
    const store = this.store(storeName);
    return {
      id: `memory:${storeName}`,
      mail: () => store.items,
      calendar: (id) => store.folder(id),
      contacts: () => {
        const book = store.folders().find((f) => f.kind === "contacts");
        return book ? store.folder(book.sourcekey) : this.gab;
      },
    };
  }
}

/** Creates an empty (or restored) memory server. */
export function createMemoryServer(options?: MemoryServerOptions): MemoryServer {
  return new MemoryServer(options);
}

function itemScopeSource(
  core: MemoryCore,
  journalId: string,
  inScope: (item: ItemRecord) => boolean,
) {
  return journalSource({
    name: journalId,
    pageSize: core.pageSize,
    readAhead: core.readAhead,
    journal: () => core.journal(journalId),
    head: () => core.cn,
    epoch: () => core.epoch,
    floor: () => core.floor,
    exportKey: (key, ref, base, nothingImported) => {
      const item = ref as ItemRecord | undefined;
      const here = item !== undefined && !item.deleted && inScope(item);
      return exportItem(item, key, here, base, nothingImported, item?.createdCn ?? 0);
    },
  });
}
