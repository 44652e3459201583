/**
 * The write surface of one Google calendar for two-way sync. Creates are `events.insert` with a
 * client-chosen `id` (Calendar v3 lets the client pick it: base32hex, 5–1024 characters), so a
 * create replayed after a crash gets 409 (duplicate) instead of a second event; updates
 * (`events.update`) and deletes carry `If-Match: <etag>` and fail with 412 when the event
 * changed (Calendar v3 "Partial response / ETags": conditional modification).
 */
import { ArgumentError } from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import { stableJson } from "../../src/two-way/log.js";
import type { OutboxEntry, WriteResult, WriteTarget } from "../../src/two-way/types.js";
import { EventSchema, type GoogleEvent } from "./schemas.js";

/** Fields Google manages: never sent, never compared. */
const SERVER_FIELDS = new Set([
  "kind",
  "etag",
  "id",
  "status",
  "htmlLink",
  "created",
  "updated",
  "iCalUID",
  "sequence",
  "creator",
  "organizer",
  "recurringEventId",
  "originalStartTime",
]);

const BASE32HEX = "0123456789abcdefghijklmnopqrstuv";

/** RFC 4648 §7 base32hex (lower case, no padding): the alphabet Google allows in event ids. */
export function base32hex(text: string): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32HEX[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32HEX[(value << (5 - bits)) & 31];
  return out;
}

/** The events of one calendar as a `WriteTarget`, over the account's Calendar client. */
export function calendarWriteTarget(http: HttpClient, calendarId: string): WriteTarget {
  const base = `calendars/${encodeURIComponent(calendarId)}/events`;
  const toObject = (event: GoogleEvent): SyncObject<GoogleEvent> => ({
    sourcekey: event.id,
    type: "item",
    parentKey: calendarId,
    changeKey: event.etag,
    data: event,
  });
  const result = (event: GoogleEvent): WriteResult => ({
    sourcekey: event.id,
    changeKey: event.etag,
    object: toObject(event),
  });
  const path = (id: string) => `${base}/${encodeURIComponent(id)}`;
  return {
    id: `google:calendar:${calendarId}`,
    // "ds" keeps ids of one-byte local ids at Google's 5-character minimum.
    keyFor: (localId) => base32hex(`ds${localId}`),
    async create(e, { signal }) {
      const res = await http.request({
        method: "POST",
        path: base,
        json: { ...writable(e.data), id: e.sourcekey },
        schema: EventSchema,
        signal,
        endpoint: "calendar.events.insert",
        // The client-chosen id makes a replay a 409, never a second event.
        idempotent: true,
      });
      return result(res.body as GoogleEvent);
    },
    async update(e, { signal }) {
      const res = await http.request({
        method: "PUT",
        path: path(e.sourcekey),
        json: writable(e.data),
        headers: e.changeKey !== undefined ? { "if-match": e.changeKey } : {},
        schema: EventSchema,
        signal,
        endpoint: "calendar.events.update",
      });
      return result(res.body as GoogleEvent);
    },
    async delete(e, { signal }) {
      await http.request({
        method: "DELETE",
        path: path(e.sourcekey),
        headers: e.changeKey !== undefined ? { "if-match": e.changeKey } : {},
        signal,
        endpoint: "calendar.events.delete",
      });
    },
    async fetch(id, { signal }) {
      const res = await http.request({
        path: path(id),
        schema: EventSchema,
        expect: [200, 404, 410],
        signal,
        endpoint: "calendar.events.get",
      });
      const event = res.body as GoogleEvent;
      if (res.status !== 200 || event.status === "cancelled") return undefined;
      return toObject(event);
    },
    applied(e: OutboxEntry, remote) {
      if (e.kind !== "create" && e.kind !== "update") return false;
      const want = writable(e.data);
      const have = remote.data as Record<string, unknown>;
      return Object.entries(want).every(([k, v]) => stableJson(v) === stableJson(have[k]));
    },
    modifiedAt(remote) {
      const updated = (remote.data as { updated?: unknown }).updated;
      const ms = typeof updated === "string" ? Date.parse(updated) : Number.NaN;
      return Number.isNaN(ms) ? undefined : ms;
    },
  };
}

/** The fields of an event the client may write (the pull's object, minus Google's own). */
function writable(data: unknown): Record<string, unknown> {
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ArgumentError("google: entry data must be an event object");
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) if (!SERVER_FIELDS.has(k)) out[k] = v;
  return out;
}
