/**
 * Gmail push (PROTOCOLS.md §1.4 "Push"): `users.watch` onto a Cloud Pub/Sub topic, renewed
 * (daily by default) until `stop()` calls `users.stop`, and a receiver for the topic's push
 * subscription that turns verified deliveries into a notification on the mail scope.
 */

import type { ZodType } from "zod";
import { ArgumentError, AuthError, ProtocolError } from "../../src/core/errors.js";
import { formatPath, type HttpClient } from "../../src/http/index.js";
import type { NotificationHub } from "../../src/notify/hub.js";
import { keepRenewed } from "../../src/notify/renewal.js";
import {
  digest,
  type PushRequest,
  safeEqual,
  serveWebhook,
  type WebhookReceiver,
  type WebhookRequest,
} from "../../src/notify/webhook.js";
import { MAILBOX_KEY } from "./google-gmail.js";
import {
  GmailPushDataSchema,
  ProfileSchema,
  PubSubPushSchema,
  WatchResponseSchema,
} from "./schemas.js";

const DAY = 24 * 3600_000;
/** The name deliveries' errors carry. */
export const PUSH_ENDPOINT = "gmail.push";
/** Gmail's deliveries are a few hundred bytes; anything near this is not one. */
const MAX_BODY_BYTES = 64 * 1024;

/** How to watch a mailbox. */
export interface MailWatchOptions {
  /** `projects/<project>/topics/<topic>`; `gmail-api-push@system.gserviceaccount.com` must be allowed to publish to it. */
  topicName: string;
  /**
   * The secret in the push subscription's endpoint URL (`https://…/gmail?token=<token>`);
   * deliveries without it are refused. Compared in constant time, never logged.
   */
  token: string;
  /** Only changes to messages with (or, with `exclude`, without) these labels are published. */
  labelIds?: readonly string[];
  /** How `labelIds` filters; Gmail's default is `include`. */
  labelFilterBehavior?: "include" | "exclude";
  /** Calls `users.watch` again this often (Google: at least every 7 days, ideally daily). Default one day. */
  renewEveryMs?: number;
  /** Whose deliveries to accept (case-insensitive); default: `users.getProfile`'s `emailAddress`. */
  emailAddress?: string;
  /**
   * Extra authentication of each delivery after the token check, e.g. verifying the OIDC JWT of
   * an authenticated push subscription (`Authorization: Bearer …`). `false` or a rejection
   * refuses the delivery (401; a rejection is also passed to `onError`).
   */
  verify?: (request: PushRequest) => boolean | Promise<boolean>;
  /**
   * Sees renewal failures, malformed deliveries and refused ones (the safety poll keeps the
   * mirror correct meanwhile). Never given the token.
   */
  onError?: (error: unknown) => void;
}

/** A live Gmail watch that renews itself until `stop()`. */
export interface MailWatch {
  /** The mailbox `historyId` of the last `users.watch` response. */
  readonly historyId: string;
  /** When Gmail stops publishing unless renewed (epoch ms). */
  readonly expiration: number;
  /** Whose deliveries the receiver accepts. */
  readonly emailAddress: string;
  /** Stops renewing and calls `users.stop`; safe to call twice. */
  stop(): Promise<void>;
}

interface Registration {
  tokenDigest: Buffer;
  emailAddress: string;
  verify: MailWatchOptions["verify"];
  onError: MailWatchOptions["onError"];
  /** False after `stop()`: deliveries still in flight are acknowledged but not emitted. */
  live: boolean;
}

/** The account's one Gmail watch (Gmail keeps one per user and project), as the receiver sees it. */
export class MailWatchSlot {
  /** Kept after `stop()` so stragglers can still be authenticated and acknowledged. */
  registration: Registration | undefined;
  /** True from the start of `watchMail` until its `stop()`. */
  busy = false;
}

/**
 * When to call `users.watch` again: every `renewEveryMs`, and always before the watch expires
 * (at the latest an hour before, or halfway for a watch shorter than two hours).
 */
export function renewalDelay(expiration: number, now: number, renewEveryMs: number): number {
  const left = expiration - now;
  return Math.max(0, Math.min(renewEveryMs, Math.max(left / 2, left - 3600_000)));
}

/** Calls `users.watch` and keeps renewing it until `stop()`. */
export async function watchMail(
  http: HttpClient,
  slot: MailWatchSlot,
  options: MailWatchOptions,
): Promise<MailWatch> {
  const renewEveryMs = options.renewEveryMs ?? DAY;
  if (!/^projects\/[^/]+\/topics\/[^/]+$/.test(options.topicName))
    throw new ArgumentError("topicName must be projects/<project>/topics/<topic>");
  if (!options.token) throw new ArgumentError("token must be a non-empty secret");
  if (!(Number.isFinite(renewEveryMs) && renewEveryMs > 0 && renewEveryMs <= 7 * DAY))
    throw new ArgumentError("renewEveryMs must be > 0 and at most 7 days");
  if (slot.busy)
    throw new ArgumentError("this account already watches its mailbox: stop() that watch first");
  slot.busy = true;
  const previous = slot.registration;
  let current: { historyId: string; expiration: number };
  let registration: Registration;
  try {
    const emailAddress = options.emailAddress ?? (await profileAddress(http));
    registration = {
      tokenDigest: digest(options.token),
      emailAddress: emailAddress.toLowerCase(),
      verify: options.verify,
      onError: options.onError,
      live: true,
    };
    // Gmail publishes one notification as soon as the watch exists: register before asking.
    slot.registration = registration;
    current = await callWatch(http, options);
  } catch (error) {
    slot.registration = previous;
    slot.busy = false;
    throw error;
  }

  const renewal = keepRenewed({
    nextDelay: () => renewalDelay(current.expiration, Date.now(), renewEveryMs),
    renew: async () => {
      // Calling watch again on a watched mailbox renews it (same topic, new expiration).
      const next = await callWatch(http, options);
      if (!renewal.stopped) current = next;
    },
    onError: options.onError,
    maxBackoffMs: renewEveryMs,
  });
  return {
    get historyId() {
      return current.historyId;
    },
    get expiration() {
      return current.expiration;
    },
    emailAddress: registration.emailAddress,
    async stop() {
      if (renewal.stopped) return;
      registration.live = false;
      try {
        // A renewal landing after users.stop would watch the mailbox again: let it finish first.
        await renewal.stop();
        await http.request({
          method: "POST",
          path: "users/me/stop",
          endpoint: "gmail.users.stop",
          expect: [200, 204, 404],
        });
      } finally {
        slot.busy = false;
      }
    },
  };
}

async function profileAddress(http: HttpClient): Promise<string> {
  const res = await http.request({
    path: "users/me/profile",
    schema: ProfileSchema,
    endpoint: "gmail.users.getProfile",
  });
  if (!res.body.emailAddress)
    throw new ProtocolError(
      "gmail.users.getProfile",
      "invalid response body at emailAddress: missing",
    );
  return res.body.emailAddress;
}

async function callWatch(
  http: HttpClient,
  options: MailWatchOptions,
): Promise<{ historyId: string; expiration: number }> {
  const res = await http.request({
    method: "POST",
    path: "users/me/watch",
    json: {
      topicName: options.topicName,
      labelIds: options.labelIds,
      labelFilterBehavior: options.labelFilterBehavior,
    },
    schema: WatchResponseSchema,
    endpoint: "gmail.users.watch",
    // Re-watching is idempotent (it replaces the watch): a transient failure may be retried.
    idempotent: true,
  });
  return { historyId: res.body.historyId, expiration: Number(res.body.expiration) };
}

/**
 * The push subscription's receiver. Answers:
 * - 405 for a method other than POST; 404 while this account never watched its mailbox;
 * - 401 without `?token=`, 403 with a wrong one, 401 when `verify` refuses (500 when it throws);
 * - 413 over 64 KiB; 400 for a body that is not a Pub/Sub envelope carrying Gmail's JSON;
 * - 200 otherwise. Deliveries for another mailbox (a topic shared by several users) and ones
 *   arriving after `stop()` are acknowledged without a notification: Pub/Sub redelivers any
 *   non-2xx answer until the message expires, so what is ignored on purpose must be acked.
 *
 * A delivery emits one folder `updated` notification on the mail scope whose `changeKey` and
 * `data.historyId` are Gmail's `historyId`: a hint to sync, the sync itself starts from the state.
 */
export function createMailReceiver(
  slot: MailWatchSlot,
  hub: NotificationHub,
  scope: string,
): WebhookReceiver {
  const refuse = (reg: Registration, status: number, error: Error): number => {
    reg.onError?.(error);
    return status;
  };
  const handle = async (request: WebhookRequest): Promise<number> => {
    if (request.method !== "POST") return 405;
    const reg = slot.registration;
    if (!reg) return 404;
    const token = request.url.searchParams.get("token");
    if (token === null) return refuse(reg, 401, new AuthError(`${PUSH_ENDPOINT}: no token`));
    if (!safeEqual(reg.tokenDigest, token))
      return refuse(reg, 403, new AuthError(`${PUSH_ENDPOINT}: wrong token`));
    if (reg.verify) {
      let ok: boolean;
      try {
        ok = await reg.verify({
          method: request.method,
          url: request.url,
          headers: request.headers,
        });
      } catch (error) {
        return refuse(reg, 500, error instanceof Error ? error : new Error(String(error)));
      }
      if (!ok) return refuse(reg, 401, new AuthError(`${PUSH_ENDPOINT}: verify() refused`));
    }
    let raw: Buffer;
    try {
      raw = await request.body();
    } catch (error) {
      reg.onError?.(error);
      throw error;
    }
    let delivery: ReturnType<typeof parseDelivery>;
    try {
      delivery = parseDelivery(raw);
    } catch (error) {
      return refuse(reg, 400, error as Error);
    }
    if (!reg.live || delivery.emailAddress.toLowerCase() !== reg.emailAddress) return 200;
    hub.emit({
      objectType: "folder",
      eventType: "updated",
      object: {
        sourcekey: MAILBOX_KEY,
        type: "folder",
        changeKey: delivery.historyId,
        data: delivery,
      },
      scope,
    });
    return 200;
  };
  // Errors of the body read are reported above; the serve layer only maps them to 413 / 500.
  return serveWebhook(handle, { endpoint: PUSH_ENDPOINT, maxBodyBytes: MAX_BODY_BYTES });
}

/** What a delivery's notification carries in `data`. */
export interface MailPushData {
  emailAddress: string;
  historyId: string;
  /** The Pub/Sub message id (not a Gmail message id). */
  messageId: string;
  publishTime?: string;
}

/** The envelope and Gmail's JSON inside it, or a `ProtocolError` naming the broken field. */
export function parseDelivery(raw: Buffer): MailPushData {
  const envelope = parseJson(raw.toString("utf8"), "(body)");
  const outer = check(PubSubPushSchema, envelope, "");
  const data = outer.message.data;
  // Pub/Sub uses standard base64, Gmail's guide says base64url: accept both alphabets, nothing else.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(data) || data.replace(/=+$/, "").length % 4 === 1)
    throw invalid("message.data", "not base64");
  const inner = check(
    GmailPushDataSchema,
    parseJson(Buffer.from(data, "base64").toString("utf8"), "message.data"),
    "message.data",
  );
  return {
    emailAddress: inner.emailAddress,
    historyId: inner.historyId,
    messageId: outer.message.messageId,
    ...(outer.message.publishTime !== undefined ? { publishTime: outer.message.publishTime } : {}),
  };
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw invalid(where, "not JSON", cause);
  }
}

function check<T>(schema: ZodType<T>, value: unknown, within: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue && issue.path.length > 0 ? formatPath(issue.path) : "";
  const where = [within, path].filter(Boolean).join(".") || "(root)";
  throw invalid(where, issue?.message ?? "invalid");
}

function invalid(where: string, what: string, cause?: unknown): ProtocolError {
  return new ProtocolError(PUSH_ENDPOINT, `invalid delivery at ${where}: ${what}`, { cause });
}
