/**
 * What every IMAP push channel shares: a dedicated connection per subscription, replaced with
 * backoff when the server drops it; IDLE (RFC 2177) re-issued before the server's 29-minute
 * limit; and the selected mailbox's `EXISTS`, `EXPUNGE`/`VANISHED` and `FETCH (FLAGS)` turned
 * into notifications. Notifications are hints that trigger a sync, never the data.
 */
import type { ImapFlow } from "imapflow";
import { Observable } from "rxjs";
import { AuthError, NotFoundError, NotSupportedError } from "../../src/core/errors.js";
import { sleep } from "../../src/core/sleep.js";
import type { Notification } from "../../src/core/types.js";
import { connectClient, mapImapError, type ResolvedImapOptions } from "./imap-client.js";
import { messageKey } from "./imap-messages.js";

const DEFAULT_IDLE_RESTART_MS = 25 * 60_000;
const MAX_BACKOFF_MS = 60_000;

/** A notification before the channel stamps its scope on it. */
export type Hint = Omit<Notification, "scope">;

/** One connected session of a push channel. */
export interface PushSession {
  readonly client: ImapFlow;
  /** True once the subscriber unsubscribed. */
  readonly stopped: boolean;
  /** Delivers a notification (dropped once stopped). */
  emit(hint: Hint): void;
  /** The session is set up: the next reconnect waits the shortest delay again. */
  established(): void;
}

/**
 * Runs `session` on a fresh connection, again after every drop (backoff from `backoffMs`,
 * doubling up to 60 s), until unsubscribed. `AuthError`, `NotFoundError` and
 * `NotSupportedError` end the Observable with that error (no retry can help); a session that
 * resolves with `"unavailable"` completes it (the server lacks what the channel needs).
 */
export function pushChannel(
  options: ResolvedImapOptions,
  scope: string,
  what: string,
  session: (s: PushSession) => Promise<"unavailable" | undefined>,
): Observable<Notification> {
  return new Observable<Notification>((subscriber) => {
    let stopped = false;
    let client: ImapFlow | undefined;
    const stop = new AbortController();
    const firstDelay = options.backoffMs ?? 200;
    let delay = firstDelay;

    async function once(): Promise<"unavailable" | undefined> {
      const c = await connectClient(
        options,
        {
          maxIdleTime: options.idleRestartMs ?? DEFAULT_IDLE_RESTART_MS,
          disableAutoIdle: true,
        },
        stop.signal,
      );
      client = c;
      const closed = c.isClosed
        ? Promise.resolve()
        : new Promise<void>((resolve) => c.once("close", () => resolve()));
      try {
        if (stopped) return;
        return await session({
          client: c,
          get stopped() {
            return stopped;
          },
          emit: (hint) => {
            if (!stopped) subscriber.next({ ...hint, scope });
          },
          established: () => {
            delay = firstDelay;
          },
        });
      } finally {
        c.close();
        await closed;
      }
    }

    async function run(): Promise<void> {
      while (!stopped) {
        try {
          if ((await once()) === "unavailable") {
            if (!stopped) subscriber.complete();
            return;
          }
        } catch (error) {
          const mapped = mapImapError(error, what);
          if (
            mapped instanceof AuthError ||
            mapped instanceof NotFoundError ||
            mapped instanceof NotSupportedError
          ) {
            if (!stopped) subscriber.error(mapped);
            return;
          }
        }
        if (stopped) return;
        await sleep(delay, stop.signal).catch(() => undefined);
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
    }

    void run();
    return () => {
      stopped = true;
      stop.abort();
      const c = client;
      if (c?.usable) c.logout().catch(() => c.close());
      else c?.close();
    };
  });
}

/**
 * IDLEs on the selected mailbox until the connection closes or the channel stops; imapflow
 * ends each IDLE after `maxIdleTime` (`idleRestartMs`) and this starts the next one.
 */
export async function idleUntilClosed(s: PushSession): Promise<void> {
  // `idle()` returns at once without a selected mailbox (e.g. it was deleted): end the session.
  while (!s.stopped && s.client.usable && s.client.mailbox) {
    const ok = await s.client.idle().catch(() => false);
    if (ok === false) break;
  }
}

/**
 * Turns the selected mailbox's untagged responses into item hints. An `EXISTS` carries no UID,
 * so its key is `uidvalidity:*`; `qualified` keys are prefixed with the path (server scope).
 */
export function selectedMailboxHints(
  s: PushSession,
  path: string,
  uidValidity: string,
  qualified: boolean,
  onEvent?: () => void,
): void {
  const key = (uid: number | undefined) =>
    messageKey(uidValidity, uid ?? "*", qualified ? path : undefined);
  s.client.on("exists", (e: { count: number; prevCount: number }) => {
    onEvent?.();
    if (e.count <= e.prevCount) return;
    s.emit({
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
  s.client.on("expunge", (e: { uid?: number; seq?: number }) => {
    onEvent?.();
    s.emit({
      objectType: "item",
      eventType: "deleted",
      object: { sourcekey: key(e.uid), type: "item", parentKey: path },
    });
  });
  s.client.on("flags", (e: { uid?: number; flags?: Set<string> }) => {
    onEvent?.();
    s.emit({
      objectType: "item",
      eventType: "updated",
      object: {
        sourcekey: key(e.uid),
        type: "item",
        parentKey: path,
        data: { flags: [...(e.flags ?? [])] },
      },
    });
  });
}
