/**
 * The four Aurinko sync resources as `StreamKind`s: what `POST …/sync` is asked, how records
 * map to changes. Paths follow Aurinko's OpenAPI (`/tasklists/{id}/…`, not `/tasks/lists`).
 */
import type { Change, SyncWindow } from "../../src/core/types.js";
import type { StreamKind } from "./aurinko-stream.js";
import {
  type AurinkoContact,
  type AurinkoEvent,
  type AurinkoMessage,
  type AurinkoTask,
  ContactSchema,
  EventSchema,
  MessageSchema,
  TaskSchema,
} from "./schemas.js";

/** The folder key of every message: the email resource spans all folders of the account. */
export const MAIL_KEY = "aurinko:email";
/** The folder key of every contact. */
export const CONTACTS_KEY = "aurinko:contacts";

const enc = encodeURIComponent;

function itemDelete(id: string, parentKey: string): Change {
  return { kind: "delete", object: { sourcekey: id, type: "item", parentKey }, soft: false };
}

function itemUpdate<R extends { id: string; etag?: string }>(
  record: R,
  parentKey: string,
  created: boolean,
): Change<R> {
  return {
    kind: "update",
    object: { sourcekey: record.id, type: "item", parentKey, changeKey: record.etag, data: record },
    created,
  };
}

/** Email over every folder; `daysWithin` bounds the initial scan. */
export function emailKind(): StreamKind<AurinkoMessage> {
  return {
    base: "email",
    startQuery: (w) => ({ daysWithin: w?.daysWithin }),
    recordSchema: MessageSchema,
    itemPath: (id) => `email/messages/${enc(id)}`,
    updated(message, created, _window, out) {
      // Read state travels in sysLabels: one `read` per record keeps the importer's flag exact.
      const unread = (message.sysLabels ?? []).includes("unread");
      out.push(itemUpdate(message, MAIL_KEY, created), {
        kind: "read",
        object: { sourcekey: message.id, parentKey: MAIL_KEY },
        isRead: !unread,
      });
    },
    deleted: (id) => itemDelete(id, MAIL_KEY),
  };
}

/** One calendar's events; `timeMin`/`timeMax` bound the initial load and the mirror. */
export function calendarKind(calendarId: string): StreamKind<AurinkoEvent> {
  return {
    base: `calendars/${enc(calendarId)}`,
    startQuery: (w) => ({ timeMin: w?.timeMin, timeMax: w?.timeMax }),
    recordSchema: EventSchema,
    itemPath: (id) => `calendars/${enc(calendarId)}/events/${enc(id)}`,
    updated(event, created, window, out) {
      // Later rounds report every change, in the window or not (and Aurinko may widen the
      // range): an event outside the window the caller asked for is a delete for the mirror.
      if (window && !inWindow(event, window)) out.push(itemDelete(event.id, calendarId));
      else out.push(itemUpdate(event, calendarId, created));
    },
    deleted: (id) => itemDelete(id, calendarId),
  };
}

/** The account's contacts. */
export function contactsKind(): StreamKind<AurinkoContact> {
  return {
    base: "contacts",
    startQuery: () => ({}),
    recordSchema: ContactSchema,
    itemPath: (id) => `contacts/${enc(id)}`,
    updated: (contact, created, _window, out) => {
      out.push(itemUpdate(contact, CONTACTS_KEY, created));
    },
    deleted: (id) => itemDelete(id, CONTACTS_KEY),
  };
}

/** One task list's tasks. */
export function tasksKind(
  tasklistId: string,
  skipCompletedBeforeDate?: string,
): StreamKind<AurinkoTask> {
  return {
    base: `tasklists/${enc(tasklistId)}`,
    startQuery: () => ({ skipCompletedBeforeDate }),
    recordSchema: TaskSchema,
    itemPath: (id) => `tasklists/${enc(tasklistId)}/tasks/${enc(id)}`,
    updated: (task, created, _window, out) => {
      out.push(itemUpdate(task, tasklistId, created));
    },
    deleted: (id) => itemDelete(id, tasklistId),
  };
}

function inWindow(event: AurinkoEvent, window: SyncWindow): boolean {
  const start = time(event.start);
  const end = time(event.end) ?? start;
  if (window.timeMin !== undefined && end !== undefined && end <= Date.parse(window.timeMin))
    return false;
  if (window.timeMax !== undefined && start !== undefined && start >= Date.parse(window.timeMax))
    return false;
  return true;
}

function time(t: AurinkoEvent["start"]): number | undefined {
  const value = t?.dateTime ?? t?.date;
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
