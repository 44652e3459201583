/**
 * Graph change notifications (PROTOCOLS.md §2.5): subscriptions created (with the validation
 * handshake answered by the account's receiver), renewed before they expire through the shared
 * renewal schedule, deleted on `stop()`; deliveries checked (`clientState` in constant time) and
 * turned into notifications on the subscribed scope; lifecycle events acted on.
 */
import { ArgumentError, AuthError, NotFoundError, ProtocolError } from "../../src/core/errors.js";
import type { ObjectType } from "../../src/core/types.js";
import { formatPath, type HttpClient } from "../../src/http/index.js";
import type { NotificationHub } from "../../src/notify/hub.js";
import { keepRenewed } from "../../src/notify/renewal.js";
import {
  digest,
  safeEqual,
  serveWebhook,
  type WebhookAnswer,
  type WebhookReceiver,
  type WebhookRequest,
} from "../../src/notify/webhook.js";
import { type ChangeNotification, NotificationBatchSchema, SubscriptionSchema } from "./schemas.js";

const MINUTE = 60_000;
/** Outlook messages, events and contacts: 4,230 minutes in the documented table (under 3 days). */
const MAX_OUTLOOK_TTL_MS = 4230 * MINUTE;
/** Deliveries without resource data are a few hundred bytes per notification. */
const MAX_BODY_BYTES = 1024 * 1024;
export const PUSH_ENDPOINT = "graph.notifications";

/** How to subscribe. */
export interface SubscriptionOptions {
  /** The HTTPS URL Graph posts notifications to (it must answer the validation handshake). */
  notificationUrl: string;
  /** Where lifecycle events go (reauthorizationRequired, subscriptionRemoved, missed). */
  lifecycleNotificationUrl?: string;
  /** The secret Graph echoes in every notification (≤ 128 characters); checked in constant time. */
  clientState: string;
  /** Default `created`, `updated` and `deleted`. */
  changeTypes?: readonly ("created" | "updated" | "deleted")[];
  /** Requested lifetime; default and cap 4,230 minutes (Outlook resources). */
  ttlMs?: number;
  /** Renew this long before expiry; default one hour. */
  renewBeforeMs?: number;
  /** Sees renewal failures and refused deliveries (the safety poll covers the gap). Never the secret. */
  onError?: (error: unknown) => void;
}

/** A live subscription that renews itself until `stop()`. */
export interface GraphSubscription {
  /** The current subscription id (a `subscriptionRemoved` recreation changes it). */
  readonly id: string;
  /** The Graph resource, e.g. `me/mailFolders('inbox')/messages`. */
  readonly resource: string;
  /** Epoch ms. */
  readonly expiration: number;
  /** Stops renewing and deletes the subscription; safe to call twice. */
  stop(): Promise<void>;
}

interface Registration {
  clientState: Buffer;
  scope: string;
  objectType: ObjectType;
  onError: SubscriptionOptions["onError"];
  /** Acts on a lifecycle event; resolves when done (errors go to `onError`). */
  lifecycle(event: string): Promise<void>;
}

/** The subscriptions of one account, as the receiver sees them. */
export class SubscriptionRegistry {
  readonly #subs = new Map<string, Registration>();
  /** Creations in flight: validation requests are answered only then. */
  pending = 0;
  add(id: string, reg: Registration): void {
    this.#subs.set(id, reg);
  }
  remove(id: string): void {
    this.#subs.delete(id);
  }
  get(id: string): Registration | undefined {
    return this.#subs.get(id);
  }
  get size(): number {
    return this.#subs.size;
  }
}

/** What a subscription is for: the Graph resource and the scope its notifications go to. */
export interface SubscriptionTarget {
  resource: string;
  scope: string;
  objectType: ObjectType;
}

/** Creates a subscription and keeps it alive until `stop()`. */
export async function subscribe(
  http: HttpClient,
  registry: SubscriptionRegistry,
  hub: NotificationHub,
  target: SubscriptionTarget,
  options: SubscriptionOptions,
): Promise<GraphSubscription> {
  const ttlMs = Math.min(options.ttlMs ?? MAX_OUTLOOK_TTL_MS, MAX_OUTLOOK_TTL_MS);
  const renewBeforeMs = options.renewBeforeMs ?? 3600_000;
  checkOptions(options, ttlMs, renewBeforeMs);
  const clientState = digest(options.clientState);
  let current = { id: "", expiration: 0 };
  let stopped = false;

  const registration: Registration = {
    clientState,
    scope: target.scope,
    objectType: target.objectType,
    onError: options.onError,
    lifecycle: async (event) => {
      if (stopped) return;
      const hint = () =>
        hub.emit({
          objectType: "folder",
          eventType: "updated",
          object: { sourcekey: target.resource, type: "folder" },
          scope: target.scope,
        });
      try {
        if (event === "reauthorizationRequired") {
          await http.request({
            method: "POST",
            path: `subscriptions/${encodeURIComponent(current.id)}/reauthorize`,
            endpoint: "graph.subscriptions.reauthorize",
            expect: [200, 202, 204],
            idempotent: true,
          });
        } else if (event === "subscriptionRemoved") {
          // Recreate, then sync: what happened in between is only in the delta.
          const old = current.id;
          current = await create();
          registry.remove(old);
          hint();
        } else if (event === "missed") {
          hint();
        }
      } catch (error) {
        options.onError?.(error);
      }
    },
  };

  const create = async () => {
    registry.pending++;
    try {
      const res = await http.request({
        method: "POST",
        path: "subscriptions",
        json: {
          changeType: (options.changeTypes ?? ["created", "updated", "deleted"]).join(","),
          notificationUrl: options.notificationUrl,
          lifecycleNotificationUrl: options.lifecycleNotificationUrl,
          resource: target.resource,
          expirationDateTime: new Date(Date.now() + ttlMs).toISOString(),
          clientState: options.clientState,
        },
        // Notifications then name objects by the same immutable ids the deltas use.
        headers: { prefer: 'IdType="ImmutableId"' },
        schema: SubscriptionSchema,
        endpoint: "graph.subscriptions.create",
        expect: [201],
      });
      const sub = { id: res.body.id, expiration: Date.parse(res.body.expirationDateTime) };
      registry.add(sub.id, registration);
      return sub;
    } finally {
      registry.pending--;
    }
  };

  current = await create();
  const renewal = keepRenewed({
    nextDelay: () => current.expiration - renewBeforeMs - Date.now(),
    renew: async () => {
      try {
        const res = await http.request({
          method: "PATCH",
          path: `subscriptions/${encodeURIComponent(current.id)}`,
          json: { expirationDateTime: new Date(Date.now() + ttlMs).toISOString() },
          schema: SubscriptionSchema,
          endpoint: "graph.subscriptions.renew",
          idempotent: true,
        });
        current = { id: current.id, expiration: Date.parse(res.body.expirationDateTime) };
      } catch (error) {
        // Expired or removed meanwhile: make a new one (the safety poll covered the gap).
        if (!(error instanceof NotFoundError)) throw error;
        const old = current.id;
        current = await create();
        registry.remove(old);
      }
    },
    onError: options.onError,
  });
  return {
    get id() {
      return current.id;
    },
    resource: target.resource,
    get expiration() {
      return current.expiration;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // A renewal in flight could recreate the subscription: let it finish, then delete that one.
      await renewal.stop();
      registry.remove(current.id);
      await http.request({
        method: "DELETE",
        path: `subscriptions/${encodeURIComponent(current.id)}`,
        endpoint: "graph.subscriptions.delete",
        expect: [200, 204, 404],
      });
    },
  };
}

function checkOptions(options: SubscriptionOptions, ttlMs: number, renewBeforeMs: number): void {
  let url: URL;
  try {
    url = new URL(options.notificationUrl);
  } catch {
    throw new ArgumentError("notificationUrl must be an absolute URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new ArgumentError("notificationUrl must be an https URL");
  if (!options.clientState || options.clientState.length > 128)
    throw new ArgumentError("clientState must be a secret of 1 to 128 characters");
  if (!(ttlMs > renewBeforeMs && renewBeforeMs >= 0))
    throw new ArgumentError("ttlMs must be longer than renewBeforeMs");
}

/**
 * The receiver of the account's notification (and lifecycle) URL. Answers:
 * - `?validationToken=` while a subscription is being created: 200, the token as `text/plain`;
 * - 405 for a method other than POST; 413 over 1 MiB; 400 for a body that is not a batch;
 * - 403 when no notification of the batch carries a known subscription's `clientState`;
 * - 202 otherwise (the work is queued; Graph wants an answer within 3 s). Notifications of
 *   unknown (stopped) subscriptions are acknowledged and dropped, forged ones dropped.
 */
export function createReceiver(
  registry: SubscriptionRegistry,
  hub: NotificationHub,
): WebhookReceiver {
  const handle = async (request: WebhookRequest): Promise<number | WebhookAnswer> => {
    if (request.method !== "POST") return 405;
    const token = request.url.searchParams.get("validationToken");
    if (token !== null) {
      // Echo only while we are creating a subscription: never an open reflector.
      if (registry.pending === 0 || token.length > 4096) return 404;
      return { status: 200, body: token, contentType: "text/plain; charset=utf-8" };
    }
    const raw = await request.body();
    let batch: ChangeNotification[];
    try {
      batch = parseBatch(raw);
    } catch {
      return 400;
    }
    let forged = 0;
    let accepted = 0;
    for (const n of batch) {
      const reg = registry.get(n.subscriptionId);
      if (!reg) continue;
      if (!safeEqual(reg.clientState, n.clientState ?? "")) {
        forged++;
        reg.onError?.(new AuthError(`${PUSH_ENDPOINT}: wrong clientState`));
        continue;
      }
      accepted++;
      if (n.lifecycleEvent !== undefined) {
        void reg.lifecycle(n.lifecycleEvent);
        continue;
      }
      hub.emit({
        objectType: reg.objectType,
        eventType: eventType(n.changeType),
        object: { sourcekey: objectId(n), type: reg.objectType },
        scope: reg.scope,
      });
    }
    return forged > 0 && accepted === 0 ? 403 : 202;
  };
  return serveWebhook(handle, { endpoint: PUSH_ENDPOINT, maxBodyBytes: MAX_BODY_BYTES });
}

function eventType(changeType: string | undefined): "created" | "updated" | "deleted" {
  return changeType === "created" || changeType === "deleted" ? changeType : "updated";
}

/** The changed object's id: `resourceData.id`, else the last segment of `resource`. */
function objectId(n: ChangeNotification): string {
  if (n.resourceData?.id) return n.resourceData.id;
  const resource = n.resource ?? "";
  const m = /\/([^/(]+)(?:\('([^']+)'\))?$/.exec(resource);
  return m?.[2] ?? m?.[1] ?? resource;
}

/** The notifications of a delivery, or a `ProtocolError` naming what is broken. */
export function parseBatch(raw: Buffer): ChangeNotification[] {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch (cause) {
    throw new ProtocolError(PUSH_ENDPOINT, "invalid delivery: not JSON", { cause });
  }
  const parsed = NotificationBatchSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? formatPath(issue.path) : "(root)";
    throw new ProtocolError(
      PUSH_ENDPOINT,
      `invalid delivery at ${where}: ${issue?.message ?? "invalid"}`,
    );
  }
  return parsed.data.value;
}
