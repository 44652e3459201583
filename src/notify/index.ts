export { checkFilter, filterNotifications, matchesFilter } from "./filter.js";
export { NotificationHub } from "./hub.js";
export { type SinkLike, subscribeSink } from "./subscribe.js";
