/**
 * One IMAP connection per account: opened on first use, replaced after the server drops it
 * (imapflow instances can't be reused after close), with backoff, a mailbox lock per operation,
 * a deadline per login and per operation, the caller's AbortSignal honoured at every step, and
 * imapflow's failures mapped onto deltasync's typed errors.
 */

import { ImapFlow, type ImapFlowOptions, type MailboxObject } from "imapflow";
import {
  AuthError,
  DeltaSyncError,
  isTransient,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../../src/core/errors.js";
import { sleep } from "../../src/core/sleep.js";
import type { imapOptionsSchema } from "./schemas.js";

export type ResolvedImapOptions = ReturnType<(typeof imapOptionsSchema)["parse"]>;

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_GREETING_TIMEOUT_MS = 10_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
/** The longest a LOGOUT may take in `close()` before the socket is simply closed. */
const LOGOUT_TIMEOUT_MS = 2_000;

/** The per-operation deadline (`commandTimeoutMs`). */
export function commandTimeout(options: ResolvedImapOptions): number {
  return options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
}

/**
 * Settles like `work`, unless `ms` pass first (the client is closed, so the stuck command fails
 * too, and this rejects with a `TransientError`) or `signal` aborts (the client is closed and
 * this rejects with the signal's reason). imapflow cancels nothing itself: closing the client is
 * the only way to stop a command the server never answers. While `waiting()` is true when the
 * time is up, the deadline starts again (another party's timer covers that phase).
 */
export function guarded<R>(
  client: ImapFlow,
  work: Promise<R>,
  what: string,
  ms: number | undefined,
  signal?: AbortSignal,
  waiting?: () => boolean,
): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const stop = (error: unknown) => {
      cleanup();
      client.close();
      reject(error);
    };
    const onAbort = () => stop(signal?.reason);
    work.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error) => {
        cleanup();
        reject(error);
      },
    );
    if (signal?.aborted) return stop(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const arm = (limit: number) => {
      timer = setTimeout(() => {
        if (waiting?.()) arm(limit);
        else stop(new TransientError(`${what}: no answer within ${limit} ms`));
      }, limit);
    };
    if (ms !== undefined) arm(ms);
  });
}

/** The imapflow client options for one connection. */
export function clientOptions(
  options: ResolvedImapOptions,
  extra: Partial<ImapFlowOptions> = {},
): ImapFlowOptions {
  const secure = options.secure ?? false;
  const auth = options.accessToken
    ? { user: options.user, accessToken: options.accessToken }
    : { user: options.user, pass: options.password ?? "" };
  const mode = options.mode ?? "auto";
  return {
    host: options.host,
    port: options.port ?? (secure ? 993 : 143),
    secure,
    connectionTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    greetingTimeout: options.greetingTimeoutMs ?? DEFAULT_GREETING_TIMEOUT_MS,
    ...(options.starttls !== undefined ? { doSTARTTLS: options.starttls } : {}),
    auth,
    logger: false,
    qresync: mode === "auto" || mode === "qresync",
    disableAutoIdle: true,
    ...(options.tlsInsecure ? { tls: { rejectUnauthorized: false } } : {}),
    ...extra,
  };
}

/** A credential-free label for errors: `alice@imap.example.com:993`. */
export function accountLabel(options: ResolvedImapOptions): string {
  const port = options.port ?? (options.secure ? 993 : 143);
  return `${options.user}@${options.host}:${port}`;
}

interface ImapFlowError {
  authenticationFailed?: boolean;
  mailboxMissing?: boolean;
  responseStatus?: string;
  responseText?: string;
  code?: string;
  serverResponseCode?: string;
}

const TRANSIENT_IMAP_CODES = new Set([
  "NoConnection",
  "EConnectionClosed",
  "ClosedAfterConnectTLS",
  "ClosedAfterConnectText",
  "CONNECT_TIMEOUT",
  "UPGRADE_TIMEOUT",
  "ETIMEOUT",
  "ETHROTTLE",
  "InstanceReused",
]);

/** Maps an imapflow (or socket) failure onto a deltasync error; `what` names the operation. */
export function mapImapError(error: unknown, what: string): Error {
  if (error instanceof DeltaSyncError) return error;
  const e = (error ?? {}) as ImapFlowError;
  const text = error instanceof Error ? error.message : String(error);
  if (e.authenticationFailed) {
    return new AuthError(`${what}: the server rejected the credentials`, { cause: error });
  }
  if (
    e.mailboxMissing ||
    e.code === "NotFound" ||
    e.serverResponseCode === "NONEXISTENT" ||
    // Dovecot lists a mailbox deleted while it had children, but SELECT answers
    // `NO Mailbox doesn't exist: B` without [NONEXISTENT]: it is gone all the same.
    (e.responseStatus === "NO" && /mailbox (doesn't|does not) exist/i.test(e.responseText ?? ""))
  ) {
    return new NotFoundError(`${what}: no such mailbox`, { cause: error });
  }
  if (e.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(e.code)) {
    // A certificate the client does not trust: retrying can't help.
    return new ProtocolError(what, `TLS handshake failed (${e.code})`, { cause: error });
  }
  if (
    e.responseStatus === "BYE" ||
    (e.code !== undefined && TRANSIENT_IMAP_CODES.has(e.code)) ||
    e.serverResponseCode === "UNAVAILABLE" ||
    e.serverResponseCode === "LIMIT" ||
    isTransient(error)
  ) {
    return new TransientError(`${what}: connection lost (${text})`, { cause: error });
  }
  if (e.responseStatus === "NO" || e.responseStatus === "BAD") {
    return new ProtocolError(what, e.responseText ?? text, { cause: error });
  }
  return new TransientError(`${what}: ${text}`, { cause: error });
}

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
  | FreshStatus;

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
  /** Logs out (or, when the server does not answer, closes the socket); safe to call twice. */
  close(): Promise<void>;
}

/** A client and its login, which `ready` settles (the client exists before it is usable). */
interface Opened {
  client: ImapFlow;
  ready: Promise<ImapFlow>;
}

/** Creates one imapflow client and logs it in, within the login deadline and `signal`. */
function openClient(
  options: ResolvedImapOptions,
  extra: Partial<ImapFlowOptions>,
  signal?: AbortSignal,
): Opened {
  const client = new ImapFlow(clientOptions(options, extra));
  client.on("error", () => {
    // Socket errors surface through the failing command; without a listener they would crash.
  });
  const what = `IMAP login ${accountLabel(options)}`;
  // imapflow bounds the TCP connect and the greeting (connectTimeoutMs, greetingTimeoutMs);
  // the login commands after the greeting get commandTimeoutMs.
  const beforeGreeting = () => client.greeting === undefined;
  const login = client.connect();
  const ready = guarded(client, login, what, commandTimeout(options), signal, beforeGreeting).then(
    () => client,
    (error) => {
      client.close();
      if (signal?.aborted) throw signal.reason;
      throw mapImapError(error, what);
    },
  );
  return { client, ready };
}

/** Connects one imapflow client (for a push channel), mapping login failures. */
export function connectClient(
  options: ResolvedImapOptions,
  extra: Partial<ImapFlowOptions> = {},
  signal?: AbortSignal,
): Promise<ImapFlow> {
  return openClient(options, extra, signal).ready;
}

/** Logs `client` out, or closes it when LOGOUT does not complete within a short time. */
export async function closeClient(client: ImapFlow): Promise<void> {
  if (!client.usable) {
    client.close();
    return;
  }
  await guarded(client, client.logout(), "LOGOUT", LOGOUT_TIMEOUT_MS).catch(() => undefined);
  client.close();
}

/** One connection of an account: opened on first use, replaced when dropped. */
interface Slot {
  attempt<R>(what: string, fn: (c: ImapFlow) => Promise<R>, signal?: AbortSignal): Promise<R>;
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
