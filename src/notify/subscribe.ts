import type { Observable, Subscription } from "rxjs";
import { ArgumentError, errorMessage } from "../core/errors.js";
import type { Notification, Sink } from "../core/types.js";

/** A sink object (Kopano style) or a plain function. */
export type SinkLike<T = unknown> = Sink<T> | ((notification: Notification<T>) => unknown);

/** Options of `subscribe`. */
export interface SubscribeOptions<T = unknown> {
  /**
   * Receives what a sink threw or rejected with (with the notification it was given), and a
   * failure of the push stream itself (without one; the stream has ended then). Default: a
   * process warning with code `DELTASYNC_SINK_ERROR`. Never an uncaught exception: the
   * subscription, and every other sink, go on.
   */
  onError?(error: unknown, notification?: Notification<T>): void;
}

const warnSinkError = (error: unknown, notification?: Notification<unknown>): void => {
  const where = notification ? ` on a notification of ${notification.scope}` : " (push stream)";
  process.emitWarning(`a notification sink failed${where}: ${errorMessage(error)}`, {
    code: "DELTASYNC_SINK_ERROR",
  });
};

/**
 * Delivers a stream to a sink. A sink that throws (or rejects) does not end the subscription;
 * its error goes to `onError` (default: a process warning), never to an uncaught exception.
 */
export function subscribeSink<T>(
  stream: Observable<Notification<T>>,
  sink: SinkLike<T>,
  options: SubscribeOptions<T> = {},
): Subscription {
  const report = options.onError ?? warnSinkError;
  // An onError that throws must not become an uncaught exception either.
  const onError = (error: unknown, n?: Notification<T>) => {
    try {
      report(error, n);
    } catch (again) {
      warnSinkError(again, n as Notification<unknown> | undefined);
    }
  };
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
        const r = deliver(n) as { then?: unknown } | undefined;
        if (r && typeof r.then === "function") {
          Promise.resolve(r).catch((error: unknown) => onError(error, n));
        }
      } catch (error) {
        onError(error, n);
      }
    },
    error: (error: unknown) => onError(error),
  });
}
