/**
 * The write surfaces of a Graph account for two-way sync (docs/two-way.md): a mailbox's
 * messages, a calendar's events, a contact folder's contacts. Updates and deletes carry
 * `If-Match: W/"<changeKey>"` (Outlook's `@odata.etag`), which Graph answers with 412
 * `ErrorIrresolvableConflict` when the item changed: the shared client maps it to
 * `ConflictError`, 404 to `NotFoundError`, and retries 429/503 (idempotent methods only).
 *
 * Creates are made idempotent with a client-chosen key (`keyFor`): events carry it as
 * `transactionId` (Graph gives a retried create the event the first one made), contacts — which
 * have no such property — as a `singleValueExtendedProperty`, looked up with a `$filter` before
 * each create (one GET more per contact created). Both carry the property, so `fetch` finds an
 * object by its client key too.
 */
import { ArgumentError, NotSupportedError } from "../../src/core/errors.js";
import type { ObjectType, SyncObject } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { stableJson } from "../../src/two-way/log.js";
import type {
  OutboxEntry,
  WriteContext,
  WriteResult,
  WriteTarget,
} from "../../src/two-way/types.js";
import { getObject, graphObject } from "./graph-delta.js";
import { type DeltaItem, DeltaItemSchema, ListPageSchema } from "./schemas.js";

/**
 * The named extended property holding a create's client key (a `String` property in a GUID
 * namespace of our own, MAPI named-property syntax).
 */
export const CLIENT_KEY_PROPERTY =
  "String {5c2a3f0e-7d1b-4e39-9a51-d3e1f0b8c6a4} Name deltasyncKey";

/** The prefix of client-chosen keys (Graph ids never contain a colon). */
const CLIENT = "ds:";

/** Properties Graph manages or the write can't set: never sent, never compared. */
const COMMON_SERVER = ["id", "changeKey", "createdDateTime", "lastModifiedDateTime", "@removed"];
const EVENT_SERVER = new Set([
  ...COMMON_SERVER,
  "type",
  "seriesMasterId",
  "iCalUId",
  "uid",
  "webLink",
  "organizer",
  "isOrganizer",
  "responseStatus",
  "originalStart",
  "originalStartTimeZone",
  "originalEndTimeZone",
  "occurrenceId",
  "isCancelled",
  "transactionId",
  "hasAttachments",
  "onlineMeeting",
  "calendar",
]);
const CONTACT_SERVER = new Set([...COMMON_SERVER, "parentFolderId"]);
/** What a message write sends: the read flag and the follow-up flag. */
const MESSAGE_WRITABLE = ["isRead", "flag"];

interface Shared {
  http: HttpClient;
  /** `me` or `users/{id}`. */
  user: string;
  /** The `Prefer` of every request (ImmutableId, and UTC times for events), as the pull sends. */
  prefer: string;
}

/** An item of a write's answer in the shape the pull delivers it (no `@odata.context`, …). */
function asPulled(body: DeltaItem, select?: readonly string[]): DeltaItem {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (k.startsWith("@odata.") && k !== "@odata.etag") continue;
    if (select?.length && k !== "id" && k !== "@odata.etag" && !select.includes(k)) continue;
    out[k] = v;
  }
  return out as DeltaItem;
}

const ifMatch = (e: { changeKey?: string }): Record<string, string> =>
  e.changeKey !== undefined ? { "if-match": `W/"${e.changeKey}"` } : {};

/** The entry's data minus what the server manages. */
function writable(data: unknown, server: Set<string>, what: string): Record<string, unknown> {
  if (data === null || typeof data !== "object" || Array.isArray(data))
    throw new ArgumentError(`graph: entry data must be ${what} object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) if (!server.has(k) && !k.startsWith("@")) out[k] = v;
  return out;
}

/** Equal as Graph returns them: `dateTimeTimeZone` values compared as instants in UTC. */
function same(a: unknown, b: unknown): boolean {
  const time = (v: unknown) => {
    const t = v as { dateTime?: unknown; timeZone?: unknown } | null;
    if (!t || typeof t.dateTime !== "string" || t.timeZone !== "UTC") return undefined;
    return Date.parse(`${t.dateTime.replace(/Z$/, "")}Z`);
  };
  const ta = time(a);
  if (ta !== undefined) return ta === time(b);
  return stableJson(a) === stableJson(b);
}

const holds = (want: Record<string, unknown>, remote: SyncObject) => {
  const have = remote.data as Record<string, unknown>;
  return Object.entries(want).every(([k, v]) => same(v, have[k]));
};

/** The ms of `lastModifiedDateTime`, for `newest-wins`. */
function modifiedAt(remote: SyncObject): number | undefined {
  const at = (remote.data as { lastModifiedDateTime?: unknown }).lastModifiedDateTime;
  const ms = typeof at === "string" ? Date.parse(at) : Number.NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

/** The object with this client key in `collection` (the extended-property `$filter`). */
async function byClientKey(
  s: Shared,
  collection: string,
  key: string,
  signal: AbortSignal,
): Promise<DeltaItem | undefined> {
  const value = key.replace(/'/g, "''");
  const res = await s.http.request({
    path: collection,
    query: {
      $filter: `singleValueExtendedProperties/Any(ep: ep/id eq '${CLIENT_KEY_PROPERTY}' and ep/value eq '${value}')`,
    },
    headers: { prefer: s.prefer },
    schema: ListPageSchema,
    endpoint: "graph.clientKey.find",
    signal,
  });
  return res.body.value[0] as DeltaItem | undefined;
}

/** Common parts: fetch by id or client key, results in the pull's shape. */
function base(
  s: Shared,
  o: {
    type: ObjectType;
    /** Where creates go and client keys are looked up. */
    collection: string;
    /** `messages`, `events`, `contacts`. */
    items: string;
    parentKey: (item: DeltaItem) => string;
    select?: readonly string[];
  },
) {
  const toObject = (item: DeltaItem) =>
    graphObject(o.type, asPulled(item, o.select), o.parentKey(item)) as SyncObject;
  const result = (item: DeltaItem): WriteResult => {
    const object = toObject(item);
    return { sourcekey: object.sourcekey, changeKey: object.changeKey, object };
  };
  const path = (id: string) => `${s.user}/${o.items}/${encodeURIComponent(id)}`;
  const send = async (
    method: string,
    id: string,
    endpoint: string,
    ctx: WriteContext,
    extra: { json?: unknown; headers?: Record<string, string>; suffix?: string } = {},
  ) => {
    const res = await s.http.request({
      method,
      path: path(id) + (extra.suffix ?? ""),
      json: extra.json,
      headers: { prefer: s.prefer, ...extra.headers },
      schema: method === "DELETE" ? undefined : DeltaItemSchema,
      endpoint,
      signal: ctx.signal,
      // Conditional, or the same state set twice (a flag, a folder): safe to repeat.
      idempotent: true,
    });
    return res.body as DeltaItem;
  };
  const fetch = async (key: string, { signal }: WriteContext) => {
    const item = key.startsWith(CLIENT)
      ? await byClientKey(s, o.collection, key, signal)
      : await getObject(
          s.http,
          {
            path: path(key),
            query: o.select?.length ? { $select: ["id", ...o.select].join(",") } : undefined,
            prefer: s.prefer,
            endpoint: `graph.${o.items}.get`,
          },
          signal,
        );
    return item && toObject(item);
  };
  return { result, send, fetch, keyFor: (localId: string) => `${CLIENT}${localId}` };
}

/** A calendar's events (`primary`: the default calendar). */
export function eventsWriteTarget(s: Shared, calendarId: string): WriteTarget {
  const collection =
    calendarId === "primary"
      ? `${s.user}/calendar/events`
      : `${s.user}/calendars/${encodeURIComponent(calendarId)}/events`;
  const b = base(s, { type: "item", collection, items: "events", parentKey: () => calendarId });
  const data = (e: { data: unknown }) => writable(e.data, EVENT_SERVER, "an event");
  return {
    id: `graph:calendar:${calendarId}`,
    keyFor: b.keyFor,
    async create(e, ctx) {
      const res = await s.http.request({
        method: "POST",
        path: collection,
        json: {
          ...data(e),
          // Graph: a create retried with the same transactionId gets the first one's event.
          transactionId: e.sourcekey,
          singleValueExtendedProperties: [{ id: CLIENT_KEY_PROPERTY, value: e.sourcekey }],
        },
        headers: { prefer: s.prefer },
        schema: DeltaItemSchema,
        endpoint: "graph.events.create",
        signal: ctx.signal,
        idempotent: true,
      });
      return b.result(res.body);
    },
    update: async (e, ctx) =>
      b.result(
        await b.send("PATCH", e.sourcekey, "graph.events.update", ctx, {
          json: data(e),
          headers: ifMatch(e),
        }),
      ),
    async delete(e, ctx) {
      await b.send("DELETE", e.sourcekey, "graph.events.delete", ctx, { headers: ifMatch(e) });
    },
    fetch: b.fetch,
    applied: (e: OutboxEntry, remote) =>
      (e.kind === "create" || e.kind === "update") && holds(data(e), remote),
    modifiedAt,
  };
}

/** A contact folder's contacts (`default`: the default folder). */
export function contactsWriteTarget(
  s: Shared & { select: readonly string[] },
  folderKey: string,
  defaultFolder: string,
): WriteTarget {
  const collection =
    folderKey === defaultFolder
      ? `${s.user}/contacts`
      : `${s.user}/contactFolders/${encodeURIComponent(folderKey)}/contacts`;
  const b = base(s, {
    type: "user",
    collection,
    items: "contacts",
    parentKey: () => folderKey,
    select: s.select,
  });
  const data = (e: { data: unknown }) => writable(e.data, CONTACT_SERVER, "a contact");
  return {
    id: `graph:contacts:${folderKey}`,
    keyFor: b.keyFor,
    async create(e, ctx) {
      // No transactionId on contacts: a replayed create finds the first one by its key.
      const made = await byClientKey(s, collection, e.sourcekey, ctx.signal);
      if (made) return b.result(made);
      const res = await s.http.request({
        method: "POST",
        path: collection,
        json: {
          ...data(e),
          singleValueExtendedProperties: [{ id: CLIENT_KEY_PROPERTY, value: e.sourcekey }],
        },
        headers: { prefer: s.prefer },
        schema: DeltaItemSchema,
        endpoint: "graph.contacts.create",
        signal: ctx.signal,
      });
      return b.result(res.body);
    },
    update: async (e, ctx) =>
      b.result(
        await b.send("PATCH", e.sourcekey, "graph.contacts.update", ctx, {
          json: data(e),
          headers: ifMatch(e),
        }),
      ),
    async delete(e, ctx) {
      await b.send("DELETE", e.sourcekey, "graph.contacts.delete", ctx, { headers: ifMatch(e) });
    },
    fetch: b.fetch,
    applied: (e: OutboxEntry, remote) =>
      (e.kind === "create" || e.kind === "update") && holds(data(e), remote),
    modifiedAt,
  };
}

/**
 * A mailbox's messages: the read flag and the follow-up flag (`update`, conditional), `read`
 * and `move` (unconditional: Graph documents no precondition on `/move`, and a flag or folder
 * set twice is the same), `delete` (conditional). Messages are not created by sync.
 */
export function mailWriteTarget(s: Shared & { select: readonly string[] }): WriteTarget {
  const b = base(s, {
    type: "item",
    collection: `${s.user}/messages`,
    items: "messages",
    parentKey: (m) => String((m as { parentFolderId?: unknown }).parentFolderId ?? ""),
    select: s.select,
  });
  const data = (e: { data: unknown }) => {
    const all = writable(e.data, new Set(), "a message");
    return Object.fromEntries(MESSAGE_WRITABLE.filter((k) => k in all).map((k) => [k, all[k]]));
  };
  return {
    id: "graph:mail",
    keyFor: b.keyFor,
    create() {
      throw new NotSupportedError("graph: messages are not created by two-way sync");
    },
    update: async (e, ctx) =>
      b.result(
        await b.send("PATCH", e.sourcekey, "graph.messages.update", ctx, {
          json: data(e),
          headers: ifMatch(e),
        }),
      ),
    read: async (e, ctx) =>
      b.result(
        await b.send("PATCH", e.sourcekey, "graph.messages.update", ctx, {
          json: { isRead: e.isRead },
        }),
      ),
    // With ImmutableId the id survives the move; without it the answer carries the new one.
    move: async (e, ctx) =>
      b.result(
        await b.send("POST", e.sourcekey, "graph.messages.move", ctx, {
          json: { destinationId: e.parentKey },
          suffix: "/move",
        }),
      ),
    async delete(e, ctx) {
      await b.send("DELETE", e.sourcekey, "graph.messages.delete", ctx, { headers: ifMatch(e) });
    },
    fetch: b.fetch,
    applied(e: OutboxEntry, remote) {
      const have = remote.data as { isRead?: unknown };
      if (e.kind === "read") return have.isRead === e.isRead;
      if (e.kind === "move") return remote.parentKey === e.parentKey;
      return e.kind === "update" && holds(data(e), remote);
    },
    modifiedAt,
  };
}
