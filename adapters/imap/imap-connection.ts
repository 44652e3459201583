/**
 * The two connections of an account: the main one FETCHes under imapflow's mailbox lock and
 * keeps the last mailbox selected; the other never selects and answers LIST and STATUS. Each is
 * opened on first use and replaced after the server drops it (imapflow instances can't be
 * reused after close), with backoff, a deadline per operation and the caller's AbortSignal.
 */

import type { ImapFlow, ImapFlowOptions, MailboxObject } from "imapflow";
import { TransientError } from "../../src/core/errors.js";
import { sleep } from "../../src/core/sleep.js";
import {
  accountLabel,
  closeClient,
  commandTimeout,
  guarded,
  mapImapError,
  type Opened,
  openClient,
  type ResolvedImapOptions,
} from "./imap-client.js";

/** A mailbox's STATUS as the STATUS connection saw it. */
export interface FreshStatus {
  uidValidity?: bigint;
  uidNext?: number;
  highestModseq?: bigint;
  /** The STATUS connection has QRESYNC enabled (so has the main one: same options). */
  qresync: boolean;
}

/** What `withMailbox` may do about the selection before `fn` runs. */
export type Selection =
  /** SELECT the mailbox (unless the lock just did): UIDVALIDITY / UIDNEXT / HIGHESTMODSEQ current. */
  | "select"
  /** Use the selection as it is (a later page of the same round). */
  | "keep"
  /**
   * A STATUS taken just before: keep a selection of the same UIDVALIDITY (NOOP brings its view
   * up to date, and the mailbox reports UIDNEXT / HIGHESTMODSEQ from the STATUS, which is never
   * newer than the view), SELECT otherwise.
   */
  | FreshStatus
  /**
   * The caller checks the mailbox's identity itself: keep a selection of it and bring the view
   * up to date (NOOP, then UIDNEXT / HIGHESTMODSEQ from a STATUS the view answers), SELECT
   * otherwise. Costs a few ms where a STATUS on the other connection has to open the mailbox.
   */
  | "refresh";

export interface ImapConnection {
  /** A credential-free label of the account. */
  readonly label: string;
  /** The options this connection was made with. */
  readonly options: ResolvedImapOptions;
  /**
   * Runs `fn` with `path` selected under imapflow's mailbox lock (see `Selection`). A dropped
   * connection is replaced and `fn` retried with backoff (callers only read, so a retry is safe).
   */
  withMailbox<R>(
    path: string,
    fn: (client: ImapFlow, mailbox: MailboxObject, vanished: Set<number>) => Promise<R>,
    signal?: AbortSignal,
    selection?: Selection,
  ): Promise<R>;
  /**
   * Runs `fn` on the connection that never selects (LIST, STATUS), with the same retries, so
   * listing never waits for a long FETCH on the main one.
   */
  withClient<R>(fn: (client: ImapFlow) => Promise<R>, signal?: AbortSignal): Promise<R>;
  /**
   * STATUS (UIDVALIDITY UIDNEXT [HIGHESTMODSEQ]) of `path`, or undefined when refused, on a
   * second connection that never selects a mailbox. RFC 3501 §6.3.10 says STATUS should not be
   * asked of the selected mailbox, and Dovecot indeed answers it (and every command) from the
   * session's own view, which never sees the mailbox deleted and recreated by another session;
   * a session without the mailbox selected sees the truth. The main connection can then keep a
   * mailbox selected between rounds (a SELECT costs 0.1-0.3 s on a 50,000-message Dovecot
   * mailbox; a round without it, a few ms).
   */
  status(path: string, signal?: AbortSignal): Promise<FreshStatus | undefined>;
  /** True when the main connection is up and has `path` selected (a `"refresh"` can skip SELECT). */
  isSelected(path: string): boolean;
  /** Logs out (or, when the server does not answer, closes the socket); safe to call twice. */
  close(): Promise<void>;
}

/** One connection of an account: opened on first use, replaced when dropped. */
interface Slot {
  attempt<R>(what: string, fn: (c: ImapFlow) => Promise<R>, signal?: AbortSignal): Promise<R>;
  /** The connection, when one is open and usable (never opens one). */
  peek(): ImapFlow | undefined;
  close(): Promise<void>;
}

function createSlot(
  options: ResolvedImapOptions,
  extra: Partial<ImapFlowOptions>,
  isClosed: () => boolean,
): Slot {
  const label = accountLabel(options);
  const timeout = commandTimeout(options);
  let current: Opened | undefined;

  function session(): Opened {
    if (!current) {
      const opened = openClient(options, extra);
      current = opened;
      // A dropped connection can't be reused: forget it so the next call reconnects.
      const forget = () => {
        if (current === opened) current = undefined;
      };
      opened.client.on("close", forget);
      opened.ready.catch(forget);
    }
    return current;
  }

  return {
    async attempt(what, fn, signal) {
      const attempts = options.connectAttempts ?? 3;
      let delay = options.backoffMs ?? 200;
      for (let i = 1; ; i++) {
        signal?.throwIfAborted();
        if (isClosed()) throw new TransientError(`${label}: connection closed`);
        const s = session();
        try {
          // The login is shared by every caller: its own deadline applies; this waits for it
          // only as long as the caller's signal allows.
          const c = await guarded(s.client, s.ready, what, undefined, signal);
          return await guarded(c, fn(c), what, timeout, signal);
        } catch (error) {
          if (signal?.aborted) throw signal.reason;
          const mapped = mapImapError(error, what);
          const dropped = mapped instanceof TransientError;
          if (dropped && !s.client.usable && current === s) {
            current = undefined;
            s.client.close();
          }
          if (!dropped || i >= attempts || isClosed()) throw mapped;
          await sleep(delay, signal);
          delay *= 2;
        }
      }
    },
    peek: () => (current?.client.usable ? current.client : undefined),
    async close() {
      const s = current;
      current = undefined;
      // A login still pending is cut at once: close() never waits for a silent server.
      if (s) await closeClient(s.client);
    },
  };
}

export function createImapConnection(options: ResolvedImapOptions): ImapConnection {
  const label = accountLabel(options);
  let closed = false;
  /** VANISHED UIDs reported while a `withMailbox` call runs (RFC 7162 §3.2.6 / §3.2.10). */
  let collector: Set<number> | undefined;
  const isClosed = () => closed;
  const main = createSlot(
    options,
    {
      expungeHandler: (event) => {
        if (event.vanished && event.uid !== undefined) collector?.add(event.uid);
      },
    },
    isClosed,
  );
  const probe = createSlot(options, {}, isClosed);

  return {
    label,
    options,
    withClient: (fn, signal) => probe.attempt(label, fn, signal),
    isSelected(path) {
      const mailbox = main.peek()?.mailbox;
      return mailbox ? mailbox.path === path : false;
    },
    status(path, signal) {
      return probe.attempt(
        `${label} STATUS "${path}"`,
        async (c) => {
          const qresync = c.enabled.has("QRESYNC");
          const modseq = qresync || c.enabled.has("CONDSTORE") || c.capabilities.has("CONDSTORE");
          const status = await c.status(path, {
            uidValidity: true,
            uidNext: true,
            ...(modseq ? { highestModseq: true } : {}),
          });
          return status ? { ...status, qresync } : undefined;
        },
        signal,
      );
    },
    withMailbox(path, fn, signal, selection = "select") {
      return main.attempt(
        `${label} mailbox "${path}"`,
        async (c) => {
          let selected = false;
          const onOpen = () => {
            selected = true;
          };
          c.on("mailboxOpen", onOpen);
          const lock = await c.getMailboxLock(path).finally(() => c.off("mailboxOpen", onOpen));
          const vanished = new Set<number>();
          try {
            collector = vanished;
            let box = c.mailbox as MailboxObject;
            if (typeof selection === "object" && !selected) {
              if (String(box.uidValidity) === String(selection.uidValidity)) {
                // The view may lag behind the STATUS: NOOP lets the server catch it up (its
                // VANISHED / EXPUNGE / FETCH updates are collected like any other).
                await c.noop();
                box = {
                  ...(c.mailbox as MailboxObject),
                  ...(selection.uidNext !== undefined ? { uidNext: selection.uidNext } : {}),
                  ...(selection.highestModseq !== undefined
                    ? { highestModseq: selection.highestModseq }
                    : {}),
                };
              } else {
                box = await c.mailboxOpen(path);
              }
            } else if (selection === "refresh" && !selected) {
              await c.noop();
              const modseq =
                c.enabled.has("QRESYNC") ||
                c.enabled.has("CONDSTORE") ||
                c.capabilities.has("CONDSTORE");
              // imapflow copies a STATUS of the selected mailbox into `c.mailbox`.
              const fresh = await c.status(path, {
                uidNext: true,
                ...(modseq ? { highestModseq: true } : {}),
              });
              box = fresh ? (c.mailbox as MailboxObject) : await c.mailboxOpen(path);
            } else if (selection !== "keep" && !selected) {
              // Dovecot answers for a mailbox this session already has selected from the
              // session's view, which misses a delete + recreate by another session.
              box = await c.mailboxOpen(path);
            }
            return await fn(c, box, vanished);
          } finally {
            collector = undefined;
            lock.release();
          }
        },
        signal,
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([main.close(), probe.close()]);
    },
  };
}
