import { type MonoTypeOperatorFunction, filter as rxFilter } from "rxjs";
import { ArgumentError } from "../core/errors.js";
import {
  EVENT_TYPES,
  type Notification,
  type NotificationFilter,
  OBJECT_TYPES,
} from "../core/types.js";

/** Throws an `ArgumentError` naming the first unknown object or event type. */
export function checkFilter(filter: NotificationFilter | undefined): void {
  for (const t of filter?.objectTypes ?? []) {
    if (!OBJECT_TYPES.includes(t)) {
      throw new ArgumentError(`unknown object type "${t}" (expected ${OBJECT_TYPES.join(", ")})`);
    }
  }
  for (const t of filter?.eventTypes ?? []) {
    if (!EVENT_TYPES.includes(t)) {
      throw new ArgumentError(`unknown event type "${t}" (expected ${EVENT_TYPES.join(", ")})`);
    }
  }
}

/** True when the notification passes the filter (an omitted list passes everything). */
export function matchesFilter(n: Notification, filter: NotificationFilter | undefined): boolean {
  if (filter?.objectTypes && !filter.objectTypes.includes(n.objectType)) return false;
  if (filter?.eventTypes && !filter.eventTypes.includes(n.eventType)) return false;
  return true;
}

/** RxJS operator: keeps the notifications that pass the filter. */
export function filterNotifications<T>(
  filter: NotificationFilter | undefined,
): MonoTypeOperatorFunction<Notification<T>> {
  return rxFilter((n) => matchesFilter(n, filter));
}
