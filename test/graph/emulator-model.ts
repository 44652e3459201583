/**
 * The data model of the Graph emulator: mail folders, messages, contact folders, contacts,
 * calendars and events (series expanded into occurrences), all versioned on one sequence
 * counter so a delta round can be served "as of" the seq it started at. Mutations go through
 * these methods (the conformance kit's "second client"), never through the adapter.
 */

interface Version<V> {
  seq: number;
  value: V | undefined;
}

/** A versioned collection with an append-only change log. */
export class Versioned<V> {
  readonly log: { seq: number; id: string }[] = [];
  readonly #versions = new Map<string, Version<V>[]>();

  put(id: string, value: V | undefined, seq: number): void {
    this.log.push({ seq, id });
    let list = this.#versions.get(id);
    if (!list) this.#versions.set(id, (list = []));
    list.push({ seq, value });
  }

  get(id: string): V | undefined {
    return this.#versions.get(id)?.at(-1)?.value;
  }

  /** The value as of `seq` (undefined before it existed or after its deletion). */
  at(id: string, seq: number): V | undefined {
    const list = this.#versions.get(id);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i] as Version<V>;
      if (v.seq <= seq) return v.value;
    }
    return undefined;
  }

  /** The seq of the last change of `id` at or before `seq`. */
  lastChange(id: string, seq: number): number {
    const list = this.#versions.get(id) ?? [];
    for (let i = list.length - 1; i >= 0; i--)
      if ((list[i] as Version<V>).seq <= seq) return (list[i] as Version<V>).seq;
    return 0;
  }

  /** The seqs at which `id` changed, in (after, upto]. */
  changesIn(id: string, after: number, upto: number): number[] {
    return (this.#versions.get(id) ?? [])
      .map((v) => v.seq)
      .filter((seq) => seq > after && seq <= upto);
  }

  /** Live values now. */
  live(): V[] {
    const out: V[] = [];
    for (const list of this.#versions.values()) {
      const v = list.at(-1)?.value;
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  /** The index of the first log entry with a seq greater than `seq`. */
  indexAfter(seq: number): number {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.log[mid] as { seq: number }).seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export interface Folder {
  id: string;
  displayName: string;
  parentFolderId: string;
  changeKey: string;
}

export interface Message {
  id: string;
  subject: string;
  isRead: boolean;
  flagged: boolean;
  parentFolderId: string;
  receivedDateTime: string;
  changeKey: string;
}

export interface Contact {
  id: string;
  displayName: string;
  parentFolderId: string;
  changeKey: string;
  /** Other writable properties as a client wrote them (shown over the defaults). */
  fields?: Record<string, unknown>;
  /** singleValueExtendedProperties a client set: property id → value. */
  extended?: Record<string, string>;
}

export interface Calendar {
  id: string;
  name: string;
  changeKey: string;
}

/** A single event or a recurring series (daily, `count` occurrences). */
export interface EventRecord {
  id: string;
  calendarId: string;
  subject: string;
  /** Days from the model's day 0 (today minus 10 days, 10:00 UTC). */
  day: number;
  count: number;
  /** Occurrence index → subject of the exception. */
  exceptions: Record<number, string>;
  /** Occurrence indexes cancelled. */
  cancelled: number[];
  changeKey: string;
  /** The client's `transactionId` of the create (Graph dedupes creates on it). */
  transactionId?: string;
  /** singleValueExtendedProperties a client set: property id → value. */
  extended?: Record<string, string>;
}

/** An event as a calendar view lists it. */
export interface ViewEvent {
  id: string;
  subject: string;
  type: "singleInstance" | "occurrence" | "exception";
  seriesMasterId: string | null;
  start: number;
  end: number;
  changeKey: string;
}

const DAY = 86_400_000;
export const MAIL_ROOT = "msgfolderroot";
export const CONTACTS_ROOT = "contactsroot";

export class GraphModel {
  seq = 0;
  /** Tokens issued before this seq are gone (410). */
  floor = 0;
  /** How an expired token is answered. */
  expiredAs: "syncStateNotFound" | "resyncRequired" | "syncStateInvalid" | "location" =
    "syncStateNotFound";
  readonly userId: string;
  readonly mailFolders = new Versioned<Folder>();
  readonly messages = new Versioned<Message>();
  readonly contactFolders = new Versioned<Folder>();
  readonly contacts = new Versioned<Contact>();
  readonly events = new Versioned<EventRecord>();
  readonly calendars = new Map<string, Calendar>();
  /** Day 0 of the calendar: 10 days ago, 10:00 UTC. */
  readonly day0 = Math.floor(Date.now() / DAY) * DAY - 10 * DAY + 10 * 3600_000;
  /** Called after every change (the emulator posts notifications). */
  onChange: (
    kind: "message" | "event" | "contact",
    id: string,
    change: "created" | "updated" | "deleted",
    where: string,
  ) => void = () => {};
  #ids = 0;

  constructor(userId = "user-1") {
    this.userId = userId;
    for (const [id, name] of [
      ["inbox", "Inbox"],
      ["archive", "Archive"],
    ])
      this.mailFolders.put(
        id as string,
        {
          id: id as string,
          displayName: name as string,
          parentFolderId: MAIL_ROOT,
          changeKey: "1",
        },
        ++this.seq,
      );
    this.calendars.set("primary", { id: "primary", name: "Calendar", changeKey: "1" });
  }

  newId(prefix: string): string {
    return `${prefix}${++this.#ids}`;
  }

  #key(): string {
    return `ck${this.seq}`;
  }

  expire(mode: GraphModel["expiredAs"] = "syncStateNotFound"): void {
    this.expiredAs = mode;
    this.floor = ++this.seq;
  }

  // Mail folders -----------------------------------------------------------------------------

  addFolder(displayName: string, parentFolderId = MAIL_ROOT): string {
    const id = this.newId("fld-");
    this.seq++;
    this.mailFolders.put(id, { id, displayName, parentFolderId, changeKey: this.#key() }, this.seq);
    return id;
  }

  renameFolder(id: string, displayName: string): void {
    const f = this.mailFolders.get(id);
    if (!f) return;
    this.seq++;
    this.mailFolders.put(id, { ...f, displayName, changeKey: this.#key() }, this.seq);
  }

  /** Hard-deletes a folder, its subfolders and their messages. */
  deleteFolder(id: string): void {
    if (!this.mailFolders.get(id)) return;
    for (const child of this.mailFolders.live().filter((f) => f.parentFolderId === id))
      this.deleteFolder(child.id);
    for (const m of this.messages.live().filter((m) => m.parentFolderId === id))
      this.deleteMessage(m.id);
    this.mailFolders.put(id, undefined, ++this.seq);
  }

  liveFolderIds(): string[] {
    return this.mailFolders.live().map((f) => f.id);
  }

  // Messages ---------------------------------------------------------------------------------

  receive(
    folderId: string,
    subject: string,
    options: { isRead?: boolean; id?: string } = {},
  ): string {
    const id = options.id ?? this.newId("msg-");
    this.seq++;
    const m: Message = {
      id,
      subject,
      isRead: options.isRead ?? false,
      flagged: false,
      parentFolderId: folderId,
      receivedDateTime: new Date(this.day0 + this.seq * 1000).toISOString(),
      changeKey: this.#key(),
    };
    this.messages.put(id, m, this.seq);
    this.onChange("message", id, "created", folderId);
    return id;
  }

  updateMessage(id: string, patch: Partial<Pick<Message, "subject" | "isRead" | "flagged">>): void {
    const m = this.messages.get(id);
    if (!m) return;
    this.seq++;
    const next = { ...m, changeKey: this.#key() };
    for (const [k, v] of Object.entries(patch))
      if (v !== undefined) Object.assign(next, { [k]: v });
    this.messages.put(id, next, this.seq);
    this.onChange("message", id, "updated", m.parentFolderId);
  }

  moveMessage(id: string, folderId: string): void {
    const m = this.messages.get(id);
    if (!m || !this.mailFolders.get(folderId) || m.parentFolderId === folderId) return;
    this.seq++;
    this.messages.put(id, { ...m, parentFolderId: folderId, changeKey: this.#key() }, this.seq);
    this.onChange("message", id, "deleted", m.parentFolderId);
    this.onChange("message", id, "created", folderId);
  }

  deleteMessage(id: string): void {
    const m = this.messages.get(id);
    if (!m) return;
    this.messages.put(id, undefined, ++this.seq);
    this.onChange("message", id, "deleted", m.parentFolderId);
  }

  // Contacts ---------------------------------------------------------------------------------

  addContactFolder(displayName: string): string {
    const id = this.newId("cf-");
    this.seq++;
    this.contactFolders.put(
      id,
      { id, displayName, parentFolderId: CONTACTS_ROOT, changeKey: this.#key() },
      this.seq,
    );
    return id;
  }

  deleteContactFolder(id: string): void {
    if (!this.contactFolders.get(id)) return;
    for (const c of this.contacts.live().filter((c) => c.parentFolderId === id))
      this.deleteContact(c.id);
    this.contactFolders.put(id, undefined, ++this.seq);
  }

  addContact(
    displayName: string,
    parentFolderId = CONTACTS_ROOT,
    more: Pick<Contact, "fields" | "extended"> = {},
  ): string {
    const id = this.newId("ct-");
    this.seq++;
    this.contacts.put(
      id,
      { id, displayName, parentFolderId, changeKey: this.#key(), ...more },
      this.seq,
    );
    this.onChange("contact", id, "created", parentFolderId);
    return id;
  }

  updateContact(
    id: string,
    patch: Partial<Pick<Contact, "displayName" | "parentFolderId" | "fields">>,
  ): void {
    const c = this.contacts.get(id);
    if (!c) return;
    if (
      patch.parentFolderId &&
      patch.parentFolderId !== CONTACTS_ROOT &&
      !this.contactFolders.get(patch.parentFolderId)
    )
      return;
    this.seq++;
    const next = { ...c, changeKey: this.#key() };
    if (patch.displayName !== undefined) next.displayName = patch.displayName;
    if (patch.parentFolderId !== undefined) next.parentFolderId = patch.parentFolderId;
    if (patch.fields !== undefined) next.fields = { ...c.fields, ...patch.fields };
    this.contacts.put(id, next, this.seq);
    this.onChange("contact", id, "updated", c.parentFolderId);
  }

  deleteContact(id: string): void {
    const c = this.contacts.get(id);
    if (!c) return;
    this.contacts.put(id, undefined, ++this.seq);
    this.onChange("contact", id, "deleted", c.parentFolderId);
  }

  // Calendars and events ---------------------------------------------------------------------

  addCalendar(name: string, id = this.newId("cal-")): string {
    this.seq++;
    this.calendars.set(id, { id, name, changeKey: this.#key() });
    return id;
  }

  renameCalendar(id: string, name: string): void {
    const c = this.calendars.get(id);
    if (!c || id === "primary") return;
    this.seq++;
    this.calendars.set(id, { ...c, name, changeKey: this.#key() });
  }

  removeCalendar(id: string): void {
    if (id === "primary") return;
    this.calendars.delete(id);
    for (const e of this.events.live().filter((e) => e.calendarId === id))
      this.events.put(e.id, undefined, ++this.seq);
  }

  addEvent(
    calendarId: string,
    subject: string,
    day: number,
    count = 0,
    transactionId?: string,
    extended?: Record<string, string>,
  ): string {
    const id = this.newId("ev-");
    this.seq++;
    this.events.put(
      id,
      {
        id,
        calendarId,
        subject,
        day,
        count,
        exceptions: {},
        cancelled: [],
        changeKey: this.#key(),
        ...(transactionId !== undefined ? { transactionId } : {}),
        ...(extended !== undefined ? { extended } : {}),
      },
      this.seq,
    );
    this.onChange("event", id, "created", calendarId);
    return id;
  }

  updateEvent(
    id: string,
    patch: { subject?: string; day?: number; exception?: [number, string]; cancel?: number },
  ): void {
    const e = this.events.get(id);
    if (!e) return;
    const next: EventRecord = { ...e, changeKey: `ck${this.seq + 1}` };
    if (patch.subject !== undefined) next.subject = patch.subject;
    if (patch.day !== undefined) next.day = patch.day;
    if (patch.exception && e.count > 0)
      next.exceptions = { ...e.exceptions, [patch.exception[0] % e.count]: patch.exception[1] };
    if (patch.cancel !== undefined && e.count > 0)
      next.cancelled = [...new Set([...e.cancelled, patch.cancel % e.count])];
    this.events.put(id, next, ++this.seq);
    this.onChange("event", id, "updated", e.calendarId);
  }

  deleteEvent(id: string): void {
    const e = this.events.get(id);
    if (!e) return;
    this.events.put(id, undefined, ++this.seq);
    this.onChange("event", id, "deleted", e.calendarId);
  }

  /** The live event a client created with this `transactionId`. */
  eventByTransaction(transactionId: string): EventRecord | undefined {
    return this.events.live().find((e) => e.transactionId === transactionId);
  }

  /** The events a calendar view shows of one record: itself, or its occurrences. */
  expand(e: EventRecord | undefined): ViewEvent[] {
    if (!e) return [];
    const at = (day: number) => this.day0 + day * DAY;
    if (e.count === 0)
      return [
        {
          id: e.id,
          subject: e.subject,
          type: "singleInstance",
          seriesMasterId: null,
          start: at(e.day),
          end: at(e.day) + 3600_000,
          changeKey: e.changeKey,
        },
      ];
    const out: ViewEvent[] = [];
    for (let k = 0; k < e.count; k++) {
      if (e.cancelled.includes(k)) continue;
      const exception = e.exceptions[k];
      out.push({
        id: `${e.id}_occ${k}`,
        subject: exception ?? e.subject,
        type: exception === undefined ? "occurrence" : "exception",
        seriesMasterId: e.id,
        start: at(e.day + k),
        end: at(e.day + k) + 3600_000,
        changeKey: e.changeKey,
      });
    }
    return out;
  }

  /** A view event by its id (single event or occurrence), now. */
  viewEvent(id: string): ViewEvent | undefined {
    const [master] = id.split("_occ");
    return this.expand(this.events.get(master as string)).find((v) => v.id === id);
  }
}
