/**
 * One imapflow client: its options, a login within deadlines and the caller's AbortSignal,
 * a deadline for any command (imapflow cancels nothing: closing the client is the only way to
 * stop a command the server never answers), a bounded LOGOUT, and imapflow's failures mapped
 * onto deltasync's typed errors.
 */

import { ImapFlow, type ImapFlowOptions } from "imapflow";
import {
  AuthError,
  DeltaSyncError,
  isTransient,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../../src/core/errors.js";
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

/** A client and its login, which `ready` settles (the client exists before it is usable). */
export interface Opened {
  client: ImapFlow;
  ready: Promise<ImapFlow>;
}

/** Creates one imapflow client and logs it in, within the login deadline and `signal`. */
export function openClient(
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
