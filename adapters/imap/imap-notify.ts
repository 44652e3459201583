/**
 * Push for IMAP: IDLE (RFC 2177) on a dedicated connection per watched mailbox, re-issued before
 * the server's 29-minute limit, reconnecting with backoff when the server drops it. `EXISTS`,
 * `EXPUNGE`/`VANISHED` and `FETCH (FLAGS)` become notifications: hints that trigger a sync,
 * never the data (an `EXISTS` carries no UID, so its key is `uidvalidity:*`).
 */
import type { ImapFlow } from "imapflow";
import { merge, Observable } from "rxjs";
import { AuthError, NotFoundError } from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import { connectClient, mapImapError, type ResolvedImapOptions } from "./imap-connection.js";
import { messageKey } from "./imap-messages.js";

const DEFAULT_IDLE_RESTART_MS = 25 * 60_000;

/** Notifications of one mailbox, for as long as the Observable is subscribed. */
export function idleNotifications(
  options: ResolvedImapOptions,
  path: string,
  scope: string,
  qualified = false,
): Observable<Notification> {
  return new Observable<Notification>((subscriber) => {
    let stopped = false;
    let client: ImapFlow | undefined;
    let delay = options.backoffMs ?? 200;

    async function session(): Promise<void> {
      const c = await connectClient(options, {
        maxIdleTime: options.idleRestartMs ?? DEFAULT_IDLE_RESTART_MS,
        disableAutoIdle: true,
      });
      client = c;
      if (stopped) {
        c.close();
        return;
      }
      const box = await c.mailboxOpen(path).catch((e: unknown) => {
        throw mapImapError(e, `IDLE on mailbox "${path}"`);
      });
      const v = String(box.uidValidity);
      const key = (uid: number | undefined) =>
        messageKey(v, uid ?? "*", qualified ? path : undefined);
      const emit = (n: Omit<Notification, "scope">) => {
        if (!stopped) subscriber.next({ ...n, scope });
      };
      c.on("exists", (e: { count: number; prevCount: number }) => {
        if (e.count <= e.prevCount) return;
        emit({
          objectType: "item",
          eventType: "created",
          object: {
            sourcekey: key(undefined),
            type: "item",
            parentKey: path,
            data: { count: e.count },
          },
        });
      });
      c.on("expunge", (e: { uid?: number; seq?: number }) => {
        const sourcekey = key(e.uid);
        emit({
          objectType: "item",
          eventType: "deleted",
          object: { sourcekey, type: "item", parentKey: path },
        });
      });
      c.on("flags", (e: { uid?: number; flags?: Set<string> }) => {
        const sourcekey = key(e.uid);
        emit({
          objectType: "item",
          eventType: "updated",
          object: {
            sourcekey,
            type: "item",
            parentKey: path,
            data: { flags: [...(e.flags ?? [])] },
          },
        });
      });
      const closed = new Promise<void>((resolve) => c.once("close", () => resolve()));
      delay = options.backoffMs ?? 200;
      // imapflow ends each IDLE after maxIdleTime; start the next one until unsubscribed.
      while (!stopped && c.usable) {
        const ok = await c.idle().catch(() => false);
        if (ok === false) break;
      }
      if (c.usable) c.close();
      await closed;
    }

    async function run(): Promise<void> {
      while (!stopped) {
        try {
          await session();
        } catch (error) {
          const mapped = mapImapError(error, `IDLE on mailbox "${path}"`);
          if (mapped instanceof AuthError || mapped instanceof NotFoundError) {
            if (!stopped) subscriber.error(mapped);
            return;
          }
        }
        if (stopped) return;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 60_000);
      }
    }

    void run();
    return () => {
      stopped = true;
      const c = client;
      if (c?.usable) c.logout().catch(() => c.close());
      else c?.close();
    };
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
