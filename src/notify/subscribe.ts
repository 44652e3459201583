import type { Observable, Subscription } from "rxjs";
import { ArgumentError } from "../core/errors.js";
import type { Notification, Sink } from "../core/types.js";

/** A sink object (Kopano style) or a plain function. */
export type SinkLike<T = unknown> = Sink<T> | ((notification: Notification<T>) => unknown);

/**
 * Delivers a stream to a sink. A sink that throws (or rejects) does not end the subscription;
 * its error is reported through `onError`, which by default rethrows asynchronously.
 */
export function subscribeSink<T>(
  stream: Observable<Notification<T>>,
  sink: SinkLike<T>,
  onError: (error: unknown) => void = (e) =>
    queueMicrotask(() => {
      throw e;
    }),
): Subscription {
  const deliver =
    typeof sink === "function"
      ? sink
      : sink && typeof sink.update === "function"
        ? (n: Notification<T>) => sink.update(n)
        : undefined;
  if (!deliver) throw new ArgumentError("sink must be a function or an object with update()");
  return stream.subscribe({
    next(n) {
      try {
        const r = deliver(n) as { catch?: (f: (e: unknown) => void) => unknown } | undefined;
        if (r && typeof r.catch === "function") r.catch(onError);
      } catch (error) {
        onError(error);
      }
    },
    error: onError,
  });
}
