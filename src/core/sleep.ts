/** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Gives the event loop two full turns. Called after starting a request and before synchronous
 * work (an importer, batch callbacks) holds the thread: undici writes a request only a loop turn
 * or two after it is made (its socket is released and the request written in later callbacks;
 * measured in bench/google.bench.ts: one turn left it unsent, two did not).
 */
export async function letRequestsOut(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
