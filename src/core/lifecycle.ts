/**
 * Init once, close once: the lifecycle every connection-holding adapter needs, written once.
 */
import { DeltaSyncError } from "./errors.js";

export interface Lifecycle<R> {
  /** The resource, opened on first use; a failed open is retried on the next call. */
  get(): Promise<R>;
  /** Closes the resource if it was opened. Safe to call twice and concurrently. */
  close(): Promise<void>;
  readonly closed: boolean;
}

/** `name` says what was closed in the error a later `get()` rejects with. */
export function createLifecycle<R>(
  open: () => Promise<R>,
  close: (resource: R) => Promise<void> | void,
  name = "the resource",
): Lifecycle<R> {
  let opening: Promise<R> | undefined;
  let closing: Promise<void> | undefined;
  return {
    get() {
      if (closing) {
        return Promise.reject(new DeltaSyncError(`${name} was closed: create a new one to go on`));
      }
      if (!opening) {
        opening = open();
        opening.catch(() => {
          opening = undefined;
        });
      }
      return opening;
    },
    close() {
      if (!closing) {
        const pending = opening;
        closing = pending
          ? pending.then(close, () => undefined).then(() => undefined)
          : Promise.resolve();
      }
      return closing;
    },
    get closed() {
      return closing !== undefined;
    },
  };
}
