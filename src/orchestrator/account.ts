/**
 * The Aurinko-style conveniences: sync an account's mail, one calendar or contacts.
 */
import { NotSupportedError } from "../core/errors.js";
import type { Account } from "../core/syncable.js";
import { type RunSyncOptions, runSync, type SyncResult } from "./run-sync.js";

/**
 * Full or incremental sync of the account's mail. Key: `<account.id>:mail`.
 * @example
 * await syncEmail(account, { daysWithin: 30, store, onUpdated: upsertMany, onDeleted: deleteMany });
 */
export async function syncEmail<T>(
  account: Account<T>,
  options: RunSyncOptions<T>,
): Promise<SyncResult> {
  if (!account.mail) throw new NotSupportedError(`account ${account.id} has no mail scope`);
  return runSync(account.mail(), { key: `${account.id}:mail`, ...options });
}

/**
 * Full or incremental sync of one calendar. Key: `<account.id>:calendar:<calendarId>`.
 * @example
 * await syncCalendar(account, "primary", { timeMin: "2024-01-01T00:00:00Z", store, onUpdated });
 */
export async function syncCalendar<T>(
  account: Account<T>,
  calendarId: string,
  options: RunSyncOptions<T>,
): Promise<SyncResult> {
  if (!account.calendar) throw new NotSupportedError(`account ${account.id} has no calendars`);
  return runSync(account.calendar(calendarId), {
    key: `${account.id}:calendar:${calendarId}`,
    ...options,
  });
}

/**
 * Full or incremental sync of the account's contacts. Key: `<account.id>:contacts`.
 * @example
 * await syncContacts(account, { store, onUpdated: upsertContacts, onDeleted: deleteContacts });
 */
export async function syncContacts<T>(
  account: Account<T>,
  options: RunSyncOptions<T>,
): Promise<SyncResult> {
  if (!account.contacts) throw new NotSupportedError(`account ${account.id} has no contacts scope`);
  return runSync(account.contacts(), { key: `${account.id}:contacts`, ...options });
}
