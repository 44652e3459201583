/**
 * One IMAP connection per account: opened on first use, replaced after the server drops it
 * (imapflow instances can't be reused after close), with backoff, a mailbox lock per operation
 * and imapflow's failures mapped onto deltasync's typed errors.
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
  if (e.mailboxMissing || e.code === "NotFound" || e.serverResponseCode === "NONEXISTENT") {
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

/**
 * STATUS (UIDVALIDITY UIDNEXT [HIGHESTMODSEQ]) of a mailbox, or `undefined` if refused. Only
 * for a mailbox this session has not selected: Dovecot answers for a selected one from the
 * session's view, which misses a delete + recreate by another session.
 */
export async function freshStatus(
  client: ImapFlow,
  path: string,
): Promise<{ uidValidity?: bigint; uidNext?: number; highestModseq?: bigint } | undefined> {
  const modseq = client.enabled.has("CONDSTORE") || client.capabilities.has("CONDSTORE");
  const status = await client.status(path, {
    uidValidity: true,
    uidNext: true,
    ...(modseq ? { highestModseq: true } : {}),
  });
  return status || undefined;
}

export interface ImapConnection {
  /** A credential-free label of the account. */
  readonly label: string;
  /** The options this connection was made with. */
  readonly options: ResolvedImapOptions;
  /**
   * Runs `fn` with `path` selected under imapflow's mailbox lock (`fresh`: SELECTed by this
   * call, so UIDVALIDITY / UIDNEXT / HIGHESTMODSEQ are current). A dropped connection is
   * replaced and `fn` retried with backoff (callers only read, so a retry is safe).
   */
  withMailbox<R>(
    path: string,
    fn: (client: ImapFlow, mailbox: MailboxObject, vanished: Set<number>) => Promise<R>,
    signal?: AbortSignal,
    fresh?: boolean,
  ): Promise<R>;
  /** Runs `fn` on the connected client (no mailbox selected for it), with the same retries. */
  withClient<R>(fn: (client: ImapFlow) => Promise<R>, signal?: AbortSignal): Promise<R>;
  /** Logs out; safe to call twice. */
  close(): Promise<void>;
}

/** Connects one imapflow client, mapping login failures. */
export async function connectClient(
  options: ResolvedImapOptions,
  extra: Partial<ImapFlowOptions> = {},
): Promise<ImapFlow> {
  const client = new ImapFlow(clientOptions(options, extra));
  client.on("error", () => {
    // Socket errors surface through the failing command; without a listener they would crash.
  });
  try {
    await client.connect();
  } catch (error) {
    client.close();
    throw mapImapError(error, `IMAP login ${accountLabel(options)}`);
  }
  return client;
}

export function createImapConnection(options: ResolvedImapOptions): ImapConnection {
  const label = accountLabel(options);
  let current: Promise<ImapFlow> | undefined;
  let closed = false;
  /** VANISHED UIDs reported while a `withMailbox` call runs (RFC 7162 §3.2.6 / §3.2.10). */
  let collector: Set<number> | undefined;

  function client(): Promise<ImapFlow> {
    if (closed) return Promise.reject(new TransientError(`${label}: connection closed`));
    if (!current) {
      const opening = connectClient(options, {
        expungeHandler: (event) => {
          if (event.vanished && event.uid !== undefined) collector?.add(event.uid);
        },
      });
      current = opening;
      opening.then(
        (c) => {
          // A dropped connection can't be reused: forget it so the next call reconnects.
          c.on("close", () => {
            if (current === opening) current = undefined;
          });
        },
        () => {
          if (current === opening) current = undefined;
        },
      );
    }
    return current;
  }

  async function attempt<R>(
    what: string,
    fn: (c: ImapFlow) => Promise<R>,
    signal?: AbortSignal,
  ): Promise<R> {
    const attempts = options.connectAttempts ?? 3;
    let delay = options.backoffMs ?? 200;
    for (let i = 1; ; i++) {
      signal?.throwIfAborted();
      let c: ImapFlow | undefined;
      try {
        c = await client();
        return await fn(c);
      } catch (error) {
        const mapped = mapImapError(error, what);
        const dropped = mapped instanceof TransientError;
        if (dropped && c && !c.usable && current) {
          const stale = current;
          current = undefined;
          stale.then((s) => s.close()).catch(() => undefined);
        }
        if (!dropped || i >= attempts || closed || signal?.aborted) throw mapped;
        await sleep(delay, signal);
        delay *= 2;
      }
    }
  }

  return {
    label,
    options,
    withClient: (fn, signal) => attempt(label, fn, signal),
    withMailbox(path, fn, signal, fresh = true) {
      return attempt(
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
            // Dovecot answers for a mailbox this session already has selected from the
            // session's view, which misses a delete + recreate by another session (a new
            // UIDVALIDITY): a round's first page re-SELECTs. Later pages reuse the selection
            // (a SELECT costs ~0.1-0.3 s on a 20,000-message Dovecot mailbox).
            const box =
              fresh && !selected ? await c.mailboxOpen(path) : (c.mailbox as MailboxObject);
            collector = vanished;
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
      const pending = current;
      current = undefined;
      const c = await pending?.catch(() => undefined);
      if (c?.usable) await c.logout().catch(() => c.close());
      else c?.close();
    },
  };
}
