/**
 * Init once, close once: the lifecycle every connection-holding adapter needs, written once.
 */
export interface Lifecycle<R> {
  /** The resource, opened on first use; a failed open is retried on the next call. */
  get(): Promise<R>;
  /** Closes the resource if it was opened. Safe to call twice and concurrently. */
  close(): Promise<void>;
  readonly closed: boolean;
}

export function createLifecycle<R>(
  open: () => Promise<R>,
  close: (resource: R) => Promise<void> | void,
): Lifecycle<R> {
  let opening: Promise<R> | undefined;
  let closing: Promise<void> | undefined;
  return {
    get() {
      if (closing) return Promise.reject(new Error("closed"));
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
