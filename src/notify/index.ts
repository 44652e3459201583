export { checkFilter, filterNotifications, matchesFilter } from "./filter.js";
export { NotificationHub } from "./hub.js";
export { keepRenewed, type Renewal, type RenewalOptions } from "./renewal.js";
export { type SinkLike, type SubscribeOptions, subscribeSink } from "./subscribe.js";
