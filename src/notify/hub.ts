import { type Observable, Subject } from "rxjs";
import type { Notification, NotificationFilter } from "../core/types.js";
import { filterNotifications } from "./filter.js";

/**
 * A fan-out point for an adapter's push events. Emitting with no subscriber costs one check, so
 * backends can call `emit` on every mutation.
 */
export class NotificationHub<T = unknown> {
  readonly #subject = new Subject<Notification<T>>();

  /** True while someone listens; lets an adapter skip building notifications nobody reads. */
  get observed(): boolean {
    return this.#subject.observed;
  }

  emit(notification: Notification<T>): void {
    if (this.#subject.observed) this.#subject.next(notification);
  }

  /** The notifications that pass the filter. */
  stream(filter?: NotificationFilter): Observable<Notification<T>> {
    return this.#subject.pipe(filterNotifications(filter));
  }

  /** Completes every subscriber (the backend shut down). */
  complete(): void {
    this.#subject.complete();
  }
}
