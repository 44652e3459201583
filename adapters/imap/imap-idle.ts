/**
 * Push for one mailbox: IDLE (RFC 2177) on a dedicated connection, re-issued before the
 * server's 29-minute limit, reconnecting with backoff when the server drops it (`pushChannel`).
 * `EXISTS`, `EXPUNGE`/`VANISHED` and `FETCH (FLAGS)` become notifications: hints that trigger a
 * sync, never the data.
 */
import { merge, type Observable } from "rxjs";
import type { Notification } from "../../src/core/types.js";
import { mapImapError, type ResolvedImapOptions } from "./imap-client.js";
import { idleUntilClosed, pushChannel, selectedMailboxHints } from "./imap-push.js";

/** Notifications of one mailbox, for as long as the Observable is subscribed. */
export function idleNotifications(
  options: ResolvedImapOptions,
  path: string,
  scope: string,
  qualified = false,
): Observable<Notification> {
  const what = `IDLE on mailbox "${path}"`;
  return pushChannel(options, scope, what, async (s) => {
    const box = await s.client.mailboxOpen(path).catch((e: unknown) => {
      throw mapImapError(e, what);
    });
    selectedMailboxHints(s, path, String(box.uidValidity), qualified);
    s.established();
    await idleUntilClosed(s);
    return undefined;
  });
}

/** Notifications of several mailboxes: one IDLE connection each. */
export function mergedNotifications(
  options: ResolvedImapOptions,
  paths: string[],
  scope: string,
): Observable<Notification> {
  return merge(...paths.map((p) => idleNotifications(options, p, scope, true)));
}
