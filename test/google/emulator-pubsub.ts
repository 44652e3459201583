/**
 * Gmail push in the Google emulator (PROTOCOLS.md §1.4 "Push"): `users.watch` / `users.stop`,
 * Pub/Sub topics with push subscriptions, and a delivery in Pub/Sub's wrapped push envelope to
 * every push subscription of the watched topic whenever the mailbox changes while the watch is
 * live (and once right after `users.watch`, as Gmail does).
 */
import type { HistoryEntry } from "./emulator-model.js";

/** A push subscription: Pub/Sub POSTs each message of `topic` to `endpoint`. */
export interface PushSubscription {
  name: string;
  topic: string;
  /** The push endpoint URL, token included (`https://…?token=…`). */
  endpoint: string;
}

/** The mailbox's watch as Gmail keeps it. */
export interface GmailWatch {
  topicName: string;
  labelIds: string[];
  labelFilterBehavior: "include" | "exclude";
  historyId: string;
  /** Epoch ms. */
  expiration: number;
}

/** One POST to a push endpoint and how it was answered. */
export interface PushDelivery {
  subscription: string;
  messageId: string;
  historyId: number;
  /** The endpoint's status, or `error` when the POST failed. */
  status: number | "error";
}

/** An answer for the emulator to send: JSON, an empty 204, or a Google error. */
export type PubSubAnswer =
  | { status: number; json?: unknown }
  | { status: number; error: { reason: string; message: string } };

const TOPIC = /^projects\/[^/]+\/topics\/[^/]+$/;

export class GmailPushEmulator {
  /** Topics, and whether `gmail-api-push@system.gserviceaccount.com` may publish to each. */
  readonly topics = new Map<string, { gmailMayPublish: boolean }>();
  readonly subscriptions = new Map<string, PushSubscription>();
  watch: GmailWatch | undefined;
  /** Every successful `users.watch`: whether the watch it renewed had already expired. */
  readonly watchCalls: { lapsed: boolean }[] = [];
  stopCalls = 0;
  readonly deliveries: PushDelivery[] = [];
  /** Delay before a `users.watch` takes effect and is answered. */
  watchLatencyMs = 0;
  /** Gmail's watch lifetime (7 days). */
  ttlMs = 7 * 86_400_000;
  #seq = 0;

  constructor(
    private readonly emailAddress: string,
    private readonly track: (delivery: Promise<unknown>) => void,
  ) {}

  /** Creates a topic; without `gmailMayPublish` a watch on it fails with 403, as on Google. */
  createTopic(topic: string, options: { gmailMayPublish?: boolean } = {}): void {
    this.topics.set(topic, { gmailMayPublish: options.gmailMayPublish ?? true });
  }

  /** Adds a push subscription (creating the topic if needed). */
  subscribe(topic: string, endpoint: string, name = `projects/emu/subscriptions/s${++this.#seq}`) {
    if (!this.topics.has(topic)) this.createTopic(topic);
    this.subscriptions.set(name, { name, topic, endpoint });
  }

  /** `POST users/me/watch`. */
  handleWatch(body: string, historyId: string): PubSubAnswer {
    let req: { topicName?: unknown; labelIds?: unknown; labelFilterBehavior?: unknown };
    try {
      req = JSON.parse(body || "{}");
    } catch {
      return { status: 400, error: { reason: "parseError", message: "Parse Error" } };
    }
    const topicName = typeof req.topicName === "string" ? req.topicName : "";
    if (!TOPIC.test(topicName))
      return bad("Invalid topicName does not match projects/SOME-ID/topics/SOME-ID");
    const behavior = req.labelFilterBehavior ?? "include";
    if (behavior !== "include" && behavior !== "exclude")
      return bad(`Invalid value at 'labelFilterBehavior' (${String(behavior)})`);
    const labelIds = req.labelIds ?? [];
    if (!Array.isArray(labelIds) || labelIds.some((l) => typeof l !== "string"))
      return bad("Invalid value at 'labelIds'");
    const topic = this.topics.get(topicName);
    if (!topic)
      return {
        status: 404,
        error: { reason: "notFound", message: `Resource not found (resource=${topicName}).` },
      };
    if (!topic.gmailMayPublish)
      return {
        status: 403,
        error: {
          reason: "forbidden",
          message: `Error sending test message to Cloud PubSub ${topicName} : User not authorized to perform this action.`,
        },
      };
    const now = Date.now();
    this.watchCalls.push({ lapsed: this.watch !== undefined && this.watch.expiration <= now });
    this.watch = {
      topicName,
      labelIds: labelIds as string[],
      labelFilterBehavior: behavior,
      historyId,
      expiration: now + this.ttlMs,
    };
    this.#publish(Number(historyId));
    return { status: 200, json: { historyId, expiration: String(this.watch.expiration) } };
  }

  /** `POST users/me/stop`. */
  handleStop(): PubSubAnswer {
    this.stopCalls++;
    this.watch = undefined;
    return { status: 204 };
  }

  /** The model's hook: publish if the live watch's label filter lets this change through. */
  mailChanged(entry: HistoryEntry, labelIds: readonly string[]): void {
    const w = this.watch;
    if (!w || w.expiration <= Date.now()) return;
    if (w.labelIds.length > 0) {
      const related = labelIds.some((l) => w.labelIds.includes(l));
      if (related !== (w.labelFilterBehavior === "include")) return;
    }
    this.#publish(entry.id);
  }

  #publish(historyId: number): void {
    const topic = this.watch?.topicName;
    // Observed: Gmail sends historyId as a JSON number here, though the guide shows a string.
    const data = Buffer.from(JSON.stringify({ emailAddress: this.emailAddress, historyId }));
    for (const sub of this.subscriptions.values()) {
      if (sub.topic !== topic) continue;
      const messageId = String(++this.#seq);
      const publishTime = new Date().toISOString();
      const envelope = {
        message: {
          data: data.toString("base64"),
          messageId,
          message_id: messageId,
          publishTime,
          publish_time: publishTime,
        },
        subscription: sub.name,
      };
      const record: PushDelivery = {
        subscription: sub.name,
        messageId,
        historyId,
        status: "error",
      };
      this.deliveries.push(record);
      this.track(
        fetch(sub.endpoint, {
          method: "POST",
          headers: { "content-type": "application/json", "user-agent": "APIs-Google" },
          body: JSON.stringify(envelope),
        })
          .then(async (r) => {
            record.status = r.status;
            await r.arrayBuffer();
          })
          .catch(() => undefined),
      );
    }
  }
}

function bad(message: string): PubSubAnswer {
  return { status: 400, error: { reason: "invalidArgument", message } };
}
