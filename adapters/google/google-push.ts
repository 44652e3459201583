/**
 * Calendar push (PROTOCOLS.md §1.1 "Push"): `events.watch` channels created, renewed before
 * they expire and stopped, and a webhook receiver that turns verified `exists` deliveries into
 * notifications on the calendar's scope.
 */
import { randomUUID } from "node:crypto";
import type { HttpClient } from "../../src/http/index.js";
import type { NotificationHub } from "../../src/notify/hub.js";
import { keepRenewed } from "../../src/notify/renewal.js";
import {
  digest,
  safeEqual,
  serveWebhook,
  type WebhookReceiver,
  type WebhookRequest,
} from "../../src/notify/webhook.js";
import { ChannelSchema } from "./schemas.js";

/** How to create a channel. */
export interface WatchOptions {
  /** The HTTPS address Google posts to (a publicly trusted certificate is required). */
  address: string;
  /** The secret echoed in `X-Goog-Channel-Token` (≤ 256 characters); checked in constant time. */
  token: string;
  /** Requested lifetime; Google may shorten it (about a week is common). Default 7 days. */
  ttlMs?: number;
  /** Renew this long before expiry; default one hour. */
  renewBeforeMs?: number;
  /** Called when a renewal fails (the safety poll keeps the mirror correct meanwhile). */
  onError?: (error: unknown) => void;
}

/** A live channel. */
export interface GoogleChannel {
  id: string;
  resourceId: string;
  calendarId: string;
  /** Epoch ms. */
  expiration: number;
}

interface ChannelRecord extends GoogleChannel {
  tokenDigest: Buffer;
}

/** Channels of one account; the webhook accepts deliveries only for these. */
export class ChannelRegistry {
  readonly #channels = new Map<string, ChannelRecord>();
  add(channel: GoogleChannel, token: string): void {
    this.#channels.set(channel.id, { ...channel, tokenDigest: digest(token) });
  }
  remove(id: string): void {
    this.#channels.delete(id);
  }
  get(id: string): ChannelRecord | undefined {
    return this.#channels.get(id);
  }
  get size(): number {
    return this.#channels.size;
  }
}

/** A channel that renews itself until `stop()`. */
export interface CalendarWatch {
  /** The current channel (a renewal replaces it). */
  readonly channel: GoogleChannel;
  /** Stops renewing and calls `channels.stop`; safe to call twice. */
  stop(): Promise<void>;
}

/** Creates an `events.watch` channel for a calendar and keeps it alive. */
export async function watchCalendar(
  http: HttpClient,
  registry: ChannelRegistry,
  calendarId: string,
  options: WatchOptions,
): Promise<CalendarWatch> {
  const ttlMs = options.ttlMs ?? 7 * 24 * 3600_000;
  const renewBeforeMs = options.renewBeforeMs ?? 3600_000;
  let current = await createChannel(http, registry, calendarId, options, ttlMs);
  const renewal = keepRenewed({
    nextDelay: () => current.expiration - renewBeforeMs - Date.now(),
    renew: async () => {
      // Google has no renewal: make a new channel (new id), then stop the old one; both overlap.
      const old = current;
      current = await createChannel(http, registry, calendarId, options, ttlMs);
      await stopChannel(http, registry, old).catch(options.onError);
    },
    onError: options.onError,
  });
  return {
    get channel() {
      return current;
    },
    async stop() {
      if (renewal.stopped) return;
      // A renewal in flight would leave its new channel live: let it finish, then stop that one.
      await renewal.stop();
      await stopChannel(http, registry, current);
    },
  };
}

async function createChannel(
  http: HttpClient,
  registry: ChannelRegistry,
  calendarId: string,
  options: WatchOptions,
  ttlMs: number,
): Promise<GoogleChannel> {
  const id = randomUUID();
  const expiration = Date.now() + ttlMs;
  // The first delivery (the `sync` message) may arrive before this response: register first.
  registry.add({ id, resourceId: "", calendarId, expiration }, options.token);
  try {
    const res = await http.request({
      method: "POST",
      path: `calendars/${encodeURIComponent(calendarId)}/events/watch`,
      json: { id, type: "web_hook", address: options.address, token: options.token, expiration },
      schema: ChannelSchema,
      endpoint: "calendar.events.watch",
    });
    const channel: GoogleChannel = {
      id,
      resourceId: res.body.resourceId,
      calendarId,
      expiration: res.body.expiration !== undefined ? Number(res.body.expiration) : expiration,
    };
    registry.add(channel, options.token);
    return channel;
  } catch (error) {
    registry.remove(id);
    throw error;
  }
}

async function stopChannel(
  http: HttpClient,
  registry: ChannelRegistry,
  channel: GoogleChannel,
): Promise<void> {
  registry.remove(channel.id);
  await http.request({
    method: "POST",
    path: "channels/stop",
    json: { id: channel.id, resourceId: channel.resourceId },
    endpoint: "calendar.channels.stop",
    expect: [200, 204, 404],
  });
}

/** Which scope a calendar's notifications go to. */
export type ScopeOfCalendar = (calendarId: string) => string;

/**
 * Verifies deliveries (token in constant time, channel and resource ids ours), ignores the
 * initial `sync` message, and emits `exists` / `not_exists` on the calendar's scope.
 */
export function createWebhookReceiver(
  registry: ChannelRegistry,
  hub: NotificationHub,
  scopeOf: ScopeOfCalendar,
): WebhookReceiver {
  const handle = (request: WebhookRequest): number => {
    const header = (name: string) => request.headers.get(name) ?? undefined;
    if (request.method !== "POST") return 405;
    const channel = registry.get(header("x-goog-channel-id") ?? "");
    if (!channel) return 404;
    if (!safeEqual(channel.tokenDigest, header("x-goog-channel-token"))) return 403;
    const resourceId = header("x-goog-resource-id");
    // The resource id is unknown until the watch response arrives (the sync message may be first).
    if (channel.resourceId !== "" && resourceId !== channel.resourceId) return 403;
    const state = header("x-goog-resource-state");
    if (state === "sync") return 200;
    if (state !== "exists" && state !== "not_exists") return 400;
    if (channel.resourceId === "") return 403;
    const scope = scopeOf(channel.calendarId);
    // A delivery carries no data: it says "this calendar's contents changed", a folder event.
    hub.emit({
      objectType: "folder",
      eventType: state === "exists" ? "updated" : "deleted",
      object: { sourcekey: channel.calendarId, type: "folder" },
      scope,
    });
    return 200;
  };
  // Channel deliveries have no body; it is never read, only drained.
  return serveWebhook(handle, { endpoint: "calendar.webhook", maxBodyBytes: 0 });
}
