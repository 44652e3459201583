/**
 * Aurinko push (PROTOCOLS.md §7 "Push"): subscriptions created with the `validationToken`
 * handshake, checked on a schedule and re-created when Aurinko reports them failed or inactive,
 * and a receiver that accepts only deliveries signed with the app's signing secret.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ArgumentError } from "../../src/core/errors.js";
import type { Notification } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import type { NotificationHub } from "../../src/notify/hub.js";
import { keepRenewed } from "../../src/notify/renewal.js";
import { serveWebhook, type WebhookReceiver } from "../../src/notify/webhook.js";
import { type AurinkoDelivery, DeliverySchema, SubscriptionSchema } from "./schemas.js";

/** How to subscribe. */
export interface AurinkoWatchOptions {
  /** The public URL of `account.webhook`; Aurinko validates it while the subscription is made. */
  notificationUrl: string;
  /** Check the subscription this often and re-create it when it is gone or inactive. Default 1 h. */
  checkEveryMs?: number;
  /** Sees failed checks and re-subscriptions (the safety poll keeps the mirror right meanwhile). */
  onError?: (error: unknown) => void;
}

/** A live subscription, re-created as needed until `stop()`. */
export interface AurinkoSubscription {
  /** Aurinko's id of the current subscription (a re-subscription replaces it). */
  readonly id: string;
  /** `/email/messages`, `/calendars/{id}/events`, `/contacts`, `/tasklists/{id}/tasks`. */
  readonly resource: string;
  /** Stops checking and deletes the subscription; safe to call twice. */
  stop(): Promise<void>;
}

/** Where a subscription's deliveries go. */
export interface SubscriptionTarget {
  resource: string;
  /** The syncable scope notified. */
  scope: string;
  /** The folder key of the scope's items. */
  parentKey: string;
}

interface Entry extends SubscriptionTarget {
  /** Replaces the subscription (after a lifecycle `error`). */
  resubscribe(): Promise<void>;
}

/** The subscriptions of one account; the receiver accepts deliveries only for these. */
export class SubscriptionRegistry {
  readonly #entries = new Map<string, Entry>();
  /** Subscriptions being created: only then is a `validationToken` echoed. */
  pending = 0;
  add(id: string, entry: Entry): void {
    this.#entries.set(id, entry);
  }
  remove(id: string): void {
    this.#entries.delete(id);
  }
  get(id: string): Entry | undefined {
    return this.#entries.get(id);
  }
  get size(): number {
    return this.#entries.size;
  }
}

/** Creates a subscription for `target` and keeps it alive. */
export async function subscribe(
  http: HttpClient,
  registry: SubscriptionRegistry,
  hub: NotificationHub,
  target: SubscriptionTarget,
  options: AurinkoWatchOptions,
): Promise<AurinkoSubscription> {
  if (!/^https?:\/\//.test(options.notificationUrl)) {
    throw new ArgumentError(
      `notificationUrl must be an http(s) URL, got ${JSON.stringify(options.notificationUrl)}`,
    );
  }
  const checkEveryMs = options.checkEveryMs ?? 3600_000;
  let stopped = false;
  let current = "";
  const entry: Entry = { ...target, resubscribe: () => replace() };

  async function create(): Promise<string> {
    registry.pending++;
    try {
      // Not retried: a repeat could leave two subscriptions (Aurinko has no idempotency key).
      const res = await http.request({
        method: "POST",
        path: "subscriptions",
        json: { resource: target.resource, notificationUrl: options.notificationUrl },
        schema: SubscriptionSchema,
        endpoint: "aurinko.subscriptions.create",
      });
      registry.add(res.body.id, entry);
      return res.body.id;
    } finally {
      registry.pending--;
    }
  }

  async function remove(id: string): Promise<void> {
    registry.remove(id);
    await http.request({
      method: "DELETE",
      path: `subscriptions/${encodeURIComponent(id)}`,
      endpoint: "aurinko.subscriptions.delete",
      expect: [200, 204, 404],
    });
  }

  let replacing: Promise<void> | undefined;
  function replace(): Promise<void> {
    // One re-subscription at a time, however many error events arrive.
    replacing ??= (async () => {
      try {
        if (stopped) return;
        const old = current;
        current = await create();
        await remove(old).catch(options.onError);
        // Deliveries may have been lost while the subscription failed: make the scope sync.
        emitScope(hub, target);
      } finally {
        replacing = undefined;
      }
    })();
    return replacing;
  }

  current = await create();
  const renewal = keepRenewed({
    nextDelay: () => checkEveryMs,
    renew: async () => {
      const res = await http.request({
        path: `subscriptions/${encodeURIComponent(current)}`,
        schema: SubscriptionSchema,
        endpoint: "aurinko.subscriptions.get",
        expect: [200, 404],
      });
      if (res.status === 404 || res.body.active === false) await replace();
    },
    onError: options.onError,
    minBackoffMs: Math.min(60_000, checkEveryMs),
  });
  return {
    get id() {
      return current;
    },
    resource: target.resource,
    async stop() {
      if (stopped) return;
      stopped = true;
      await renewal.stop();
      await replacing?.catch(() => undefined);
      await remove(current);
    },
  };
}

function emitScope(hub: NotificationHub, target: SubscriptionTarget): void {
  hub.emit({
    objectType: "folder",
    eventType: "updated",
    object: { sourcekey: target.parentKey, type: "folder" },
    scope: target.scope,
  });
}

/** Options of the receiver. */
export interface ReceiverOptions {
  /** The app's signing secret (Aurinko console); every delivery must be signed with it. */
  signingSecret: string | undefined;
  /** Deliveries whose timestamp is further than this from now are refused. Default 300 s. */
  toleranceSec?: number;
  /** The clock, in epoch ms (tests). */
  now?: () => number;
  /** Bodies larger than this are refused with 413. Default 1 MiB. */
  maxBodyBytes?: number;
  onError?: (error: unknown) => void;
}

/** `v0:{timestamp}:{raw body}` signed with HMAC-SHA256, hex (what Aurinko sends). */
export function signDelivery(secret: string, timestamp: string, body: Buffer | string): string {
  return createHmac("sha256", secret)
    .update(`v0:${timestamp}:`)
    .update(typeof body === "string" ? Buffer.from(body, "utf8") : body)
    .digest("hex");
}

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
const TIMESTAMP = /^\d{1,15}$/;
/** A validation token is echoed as text: only a bounded, printable token is. */
const VALIDATION_TOKEN = /^[\x21-\x7e]{1,1024}$/;

/**
 * The webhook of an account:
 * - `?validationToken=X` while a subscription is being created → 200 with X as plain text
 *   (404 otherwise: the URL echoes nothing for anyone else);
 * - a delivery without `X-Aurinko-Request-Timestamp` / `X-Aurinko-Signature`, with a timestamp
 *   outside the tolerance, or whose signature (over the raw bytes, compared in constant time)
 *   does not match → 401;
 * - a malformed body → 400; an unknown subscription → 404;
 * - lifecycle `error` → re-subscribe and make the scope sync; `active` → make the scope sync;
 * - change payloads → one notification per record on the subscription's scope; 200.
 */
export function createAurinkoReceiver(
  registry: SubscriptionRegistry,
  hub: NotificationHub,
  options: ReceiverOptions,
): WebhookReceiver {
  const toleranceSec = options.toleranceSec ?? 300;
  const now = options.now ?? Date.now;
  return serveWebhook(
    async (request) => {
      const validationToken = request.url.searchParams.get("validationToken");
      if (validationToken !== null) {
        if (registry.pending === 0) return 404;
        if (!VALIDATION_TOKEN.test(validationToken)) return 400;
        return { status: 200, body: validationToken, contentType: "text/plain; charset=utf-8" };
      }
      if (request.method !== "POST") return 405;
      const secret = options.signingSecret;
      const timestamp = request.headers.get("x-aurinko-request-timestamp");
      const signature = request.headers.get("x-aurinko-signature");
      if (!secret || timestamp === null || signature === null) return 401;
      if (!TIMESTAMP.test(timestamp) || !HEX_SHA256.test(signature)) return 401;
      if (Math.abs(now() / 1000 - Number(timestamp)) > toleranceSec) return 401;
      const body = await request.body();
      const expected = Buffer.from(signDelivery(secret, timestamp, body), "hex");
      if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) return 401;
      let delivery: AurinkoDelivery;
      try {
        const parsed = DeliverySchema.safeParse(JSON.parse(body.toString("utf8")));
        if (!parsed.success) return 400;
        delivery = parsed.data;
      } catch {
        return 400;
      }
      const entry = registry.get(delivery.subscription);
      if (!entry) return 404;
      if (delivery.lifecycleEvent !== undefined) {
        if (delivery.lifecycleEvent === "error") {
          // Answer at once (Aurinko wants a quick 200); the re-subscription runs on its own.
          entry.resubscribe().catch((error) => options.onError?.(error));
        } else emitScope(hub, entry);
        return 200;
      }
      const payloads = delivery.payloads ?? [];
      if (payloads.length === 0) emitScope(hub, entry);
      for (const p of payloads) hub.emit(payloadNotification(entry, p));
      return 200;
    },
    {
      endpoint: "aurinko.webhook",
      maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
      onError: options.onError,
    },
  );
}

function payloadNotification(
  entry: Entry,
  payload: NonNullable<AurinkoDelivery["payloads"]>[number],
): Notification {
  const eventType =
    payload.changeType === "created" || payload.changeType === "deleted"
      ? payload.changeType
      : "updated";
  const key = { sourcekey: payload.id, type: "item" as const, parentKey: entry.parentKey };
  return {
    objectType: "item",
    eventType,
    // A delivery names the object, it does not carry it: `data` is the payload itself.
    object: eventType === "deleted" ? key : { ...key, data: payload },
    scope: entry.scope,
  };
}
