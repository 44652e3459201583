export { checkFilter, filterNotifications, matchesFilter } from "./filter.js";
export { NotificationHub } from "./hub.js";
export { keepRenewed, type Renewal, type RenewalOptions } from "./renewal.js";
export { type SinkLike, type SubscribeOptions, subscribeSink } from "./subscribe.js";
export {
  digest,
  PayloadTooLargeError,
  type PushRequest,
  type ServeOptions,
  safeEqual,
  serveWebhook,
  type WebhookAnswer,
  type WebhookReceiver,
  type WebhookRequest,
} from "./webhook.js";
