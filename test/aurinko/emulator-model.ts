/**
 * The data of one emulated Aurinko account: sync resources ("collections": `email`,
 * `calendars/{id}`, `contacts`, `tasklists/{id}`) whose records carry the sequence number of
 * their last change, tombstones for deletions, and the calendar and task lists.
 */

export interface StoredRecord {
  id: string;
  /** Sequence number of the last change (creation, update or deletion). */
  seq: number;
  deleted: boolean;
  data: Record<string, unknown>;
}

export type ChangeType = "created" | "updated" | "deleted";

export class AurinkoModel {
  seq = 0;
  /** Tokens issued before this generation are expired. */
  generation = 1;
  readonly collections = new Map<string, Map<string, StoredRecord>>();
  readonly calendars = new Map<string, { id: string; name: string; isPrimary?: boolean }>();
  readonly tasklists = new Map<string, { id: string; title: string }>();
  /** Called after every change of a collection (the emulator posts webhooks from it). */
  onChange: (collection: string, id: string, type: ChangeType) => void = () => undefined;
  #ids = 0;

  constructor(readonly accountId: string) {
    this.collection("email");
    this.collection("contacts");
  }

  newId(prefix: string): string {
    return `${prefix}${++this.#ids}`;
  }

  collection(name: string): Map<string, StoredRecord> {
    let c = this.collections.get(name);
    if (!c) {
      c = new Map();
      this.collections.set(name, c);
    }
    return c;
  }

  addCalendar(id: string, name = id): void {
    this.calendars.set(id, { id, name, ...(id === "primary" ? { isPrimary: true } : {}) });
    this.collection(`calendars/${id}`);
  }

  renameCalendar(id: string, name: string): void {
    const c = this.calendars.get(id);
    if (c) c.name = name;
  }

  removeCalendar(id: string): void {
    this.calendars.delete(id);
    this.collections.delete(`calendars/${id}`);
  }

  addTasklist(id: string, title = id): void {
    this.tasklists.set(id, { id, title });
    this.collection(`tasklists/${id}`);
  }

  renameTasklist(id: string, title: string): void {
    const t = this.tasklists.get(id);
    if (t) t.title = title;
  }

  removeTasklist(id: string): void {
    this.tasklists.delete(id);
    this.collections.delete(`tasklists/${id}`);
  }

  /** Creates a record; returns its id. */
  insert(collection: string, data: Record<string, unknown>, id?: string): string {
    const key = id ?? this.newId(`${collection.split("/")[0]}-`);
    const seq = ++this.seq;
    this.collection(collection).set(key, {
      id: key,
      seq,
      deleted: false,
      data: { ...data, id: key, etag: `"${seq}"` },
    });
    this.onChange(collection, key, "created");
    return key;
  }

  update(collection: string, id: string, patch: Record<string, unknown>): void {
    const r = this.collections.get(collection)?.get(id);
    if (!r || r.deleted) return;
    r.seq = ++this.seq;
    r.data = { ...r.data, ...patch, id, etag: `"${r.seq}"` };
    this.onChange(collection, id, "updated");
  }

  remove(collection: string, id: string): void {
    const r = this.collections.get(collection)?.get(id);
    if (!r || r.deleted) return;
    r.seq = ++this.seq;
    r.deleted = true;
    this.onChange(collection, id, "deleted");
  }

  live(collection: string): StoredRecord[] {
    return [...(this.collections.get(collection)?.values() ?? [])].filter((r) => !r.deleted);
  }

  /** Every token issued so far becomes invalid (410 on delta tokens, 400 on page tokens). */
  expire(): void {
    this.generation++;
  }
}
