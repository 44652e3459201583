/**
 * The write surfaces of an Aurinko account for two-way sync (PROTOCOLS.md §7, Aurinko's
 * OpenAPI): events, contacts and tasks are created with `POST` (201 `{id, etag, record}`),
 * changed with `PATCH` and removed with `DELETE`, both with `If-Match: <etag>` (412 when the
 * object changed); a message's read state and keywords go through
 * `POST email/messages/{id}/status`, and `DELETE email/messages/{id}` moves it to Trash.
 *
 * Creates are not idempotent on Aurinko: the server chooses the id, and the API documents
 * neither a client id nor an idempotency key nor a private property a replay could search
 * for. A create replayed after a crash between Aurinko's write and the outbox's commit (or
 * retried after a connection reset mid-request) makes a second object; the pull then delivers
 * it like any remote object, so the copy stays equal to the server, with the duplicate visible.
 */
import { ArgumentError, ConflictError, NotSupportedError } from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { stableJson } from "../../src/two-way/log.js";
import type { OutboxEntry, WriteResult, WriteTarget } from "../../src/two-way/types.js";
import { CONTACTS_KEY, MAIL_KEY } from "./aurinko-kinds.js";
import { type AurinkoMessage, MessageSchema, WriteRecordSchema } from "./schemas.js";

/** Fields Aurinko manages (read-only in its OpenAPI): never sent, never compared. */
const SERVER_FIELDS = new Set([
  "id",
  "etag",
  "calendarId",
  "createdTime",
  "lastModifiedTime",
  "recurrenceType",
  "iCalUid",
  "globalId",
  "categories",
  "htmlLink",
  "hasAttachments",
  "omitted",
]);

const enc = encodeURIComponent;

/** Which collection of the account a target writes. */
export type AurinkoWriteCollection =
  | { kind: "calendar"; calendarId: string }
  | { kind: "contacts" }
  | { kind: "tasks"; tasklistId: string };

/**
 * The events of a calendar, the contacts, or the tasks of a task list as a `WriteTarget`.
 * `keyFor` gives the placeholder key a new object has until its create returns Aurinko's id
 * (the pusher then moves the object's later entries and the copy's row to that id).
 */
export function aurinkoItemWriteTarget(
  http: HttpClient,
  collection: AurinkoWriteCollection,
): WriteTarget {
  const [base, parentKey, name] =
    collection.kind === "calendar"
      ? [`calendars/${enc(collection.calendarId)}/events`, collection.calendarId, "events"]
      : collection.kind === "contacts"
        ? ["contacts", CONTACTS_KEY, "contacts"]
        : [`tasklists/${enc(collection.tasklistId)}/tasks`, collection.tasklistId, "tasks"];
  const id =
    collection.kind === "calendar"
      ? `aurinko:calendar:${collection.calendarId}`
      : collection.kind === "contacts"
        ? "aurinko:contacts"
        : `aurinko:tasks:${collection.tasklistId}`;
  const path = (key: string) => `${base}/${enc(key)}`;
  const toObject = (record: { id: string; etag?: string }): SyncObject => ({
    sourcekey: record.id,
    type: "item",
    parentKey,
    changeKey: record.etag,
    data: record,
  });
  const result = (record: { id: string; etag?: string }): WriteResult => ({
    sourcekey: record.id,
    changeKey: record.etag,
    object: toObject(record),
  });
  const ifMatch = (e: { changeKey?: string }): Record<string, string> =>
    e.changeKey !== undefined ? { "if-match": e.changeKey } : {};
  return {
    id,
    // A placeholder until Aurinko answers with its id; never sent to Aurinko.
    keyFor: (localId) => `local:${localId}`,
    async create(e, { signal }) {
      const res = await http.request({
        method: "POST",
        path: base,
        json: writable(e.data),
        schema: WriteRecordSchema,
        expect: [200, 201],
        signal,
        endpoint: `aurinko.${name}.create`,
        // Not idempotent (see the module's comment): never retried by the HTTP client.
        idempotent: false,
      });
      const body = res.body;
      const record = body.record ?? (await fetchRecord(http, path(body.id), name, signal));
      if (!record) throw new ConflictError(`${id}: the created object ${body.id} is gone`);
      return result({ ...record, id: body.id, etag: body.etag ?? record.etag });
    },
    async update(e, { signal }) {
      const res = await http.request({
        method: "PATCH",
        path: path(e.sourcekey),
        json: writable(e.data),
        headers: ifMatch(e),
        schema: RecordOf,
        signal,
        endpoint: `aurinko.${name}.update`,
        // With If-Match a replay that landed is a 412 the pusher recognises (`applied`);
        // without one it writes the same fields again.
        idempotent: true,
      });
      return result(res.body);
    },
    async delete(e, { signal }) {
      await http.request({
        method: "DELETE",
        path: path(e.sourcekey),
        headers: ifMatch(e),
        signal,
        endpoint: `aurinko.${name}.delete`,
      });
    },
    async fetch(key, { signal }) {
      const record = await fetchRecord(http, path(key), name, signal);
      return record ? toObject(record) : undefined;
    },
    applied(e: OutboxEntry, remote) {
      if (e.kind !== "create" && e.kind !== "update") return false;
      const have = remote.data as Record<string, unknown>;
      return Object.entries(writable(e.data)).every(
        ([k, v]) => stableJson(v) === stableJson(have[k]),
      );
    },
    modifiedAt,
  };
}

/**
 * The account's messages as a `WriteTarget` for read state, keywords and Trash. Aurinko's
 * status call and message delete take no `If-Match`: with a `changeKey`, the target reads the
 * message first and refuses (`ConflictError`) when its etag moved on — a check, not an atomic
 * condition (a change between the read and the write is not seen). Creates are not supported
 * (sending mail is not a sync write).
 */
export function aurinkoMailWriteTarget(http: HttpClient): WriteTarget {
  const id = "aurinko:email";
  const path = (key: string) => `email/messages/${enc(key)}`;
  const toObject = (m: AurinkoMessage): SyncObject => ({
    sourcekey: m.id,
    type: "item",
    parentKey: MAIL_KEY,
    changeKey: m.etag,
    data: m,
  });
  const get = async (key: string, signal: AbortSignal) => {
    const res = await http.request({
      path: path(key),
      schema: MessageSchema,
      expect: [200, 404, 410],
      signal,
      endpoint: "aurinko.email.get",
    });
    return res.status === 200 ? (res.body as AurinkoMessage) : undefined;
  };
  /** The message now; `ConflictError` when the entry's base version is not it any more. */
  const check = async (e: { sourcekey: string; changeKey?: string }, signal: AbortSignal) => {
    if (e.changeKey === undefined) return;
    const now = await get(e.sourcekey, signal);
    // A gone message is the status call's own 404 (NotFoundError).
    if (now && now.etag !== e.changeKey) {
      throw new ConflictError(`${id}: message ${e.sourcekey} changed (etag ${now.etag})`);
    }
  };
  const status = async (key: string, json: Record<string, unknown>, signal: AbortSignal) => {
    await http.request({
      method: "POST",
      path: `${path(key)}/status`,
      json,
      signal,
      endpoint: "aurinko.email.status",
      // Setting the same state twice is the same state.
      idempotent: true,
    });
    const now = await get(key, signal);
    return now
      ? { sourcekey: key, changeKey: now.etag, object: toObject(now) }
      : { sourcekey: key };
  };
  return {
    id,
    keyFor: (localId) => `local:${localId}`,
    async create() {
      throw new NotSupportedError(`${id}: Aurinko's sync API creates no messages`);
    },
    async update(e, { signal }) {
      await check(e, signal);
      return status(e.sourcekey, mailStatus(e.data), signal);
    },
    async read(e, { signal }) {
      await check(e, signal);
      return status(e.sourcekey, { unread: !e.isRead }, signal);
    },
    async delete(e, { signal }) {
      await check(e, signal);
      await http.request({
        method: "DELETE",
        path: path(e.sourcekey),
        signal,
        endpoint: "aurinko.email.delete",
      });
    },
    async fetch(key, { signal }) {
      const m = await get(key, signal);
      return m ? toObject(m) : undefined;
    },
    applied(e: OutboxEntry, remote) {
      const m = remote.data as AurinkoMessage;
      const labels = m.sysLabels ?? [];
      switch (e.kind) {
        case "read":
          return labels.includes("unread") === !e.isRead;
        case "delete":
          // Aurinko's delete moves the message to Trash.
          return labels.includes("trash") || m.folderId === "trash";
        case "update": {
          const want = mailStatus(e.data);
          return (
            (want.unread === undefined || labels.includes("unread") === want.unread) &&
            (want.keywords === undefined || stableJson(want.keywords) === stableJson(m.keywords))
          );
        }
        default:
          return false;
      }
    },
    modifiedAt,
  };
}

/** The status call's body for a message as the pull delivers it (`sysLabels`, `keywords`). */
function mailStatus(data: unknown): { unread?: boolean; keywords?: string[] } {
  const m = object(data, "a message");
  const out: { unread?: boolean; keywords?: string[] } = {};
  if (Array.isArray(m.sysLabels)) out.unread = m.sysLabels.includes("unread");
  if (typeof m.unread === "boolean") out.unread = m.unread;
  if (Array.isArray(m.keywords)) out.keywords = m.keywords.map(String);
  return out;
}

function modifiedAt(remote: SyncObject): number | undefined {
  const t = (remote.data as { lastModifiedTime?: unknown }).lastModifiedTime;
  const ms = typeof t === "string" ? Date.parse(t) : Number.NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

const RecordOf = WriteRecordSchema.shape.record.unwrap();

async function fetchRecord(http: HttpClient, path: string, name: string, signal: AbortSignal) {
  const res = await http.request({
    path,
    schema: RecordOf,
    expect: [200, 404, 410],
    signal,
    endpoint: `aurinko.${name}.get`,
  });
  return res.status === 200 ? res.body : undefined;
}

function object(data: unknown, what: string): Record<string, unknown> {
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ArgumentError(`aurinko: entry data must be ${what} object`);
  }
  return data as Record<string, unknown>;
}

/** The fields of an object the client may write (the pull's object, minus Aurinko's own). */
function writable(data: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object(data, "an"))) if (!SERVER_FIELDS.has(k)) out[k] = v;
  return out;
}
