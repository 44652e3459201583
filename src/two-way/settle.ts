/**
 * After a pull: objects our pushes created that the pull has not reported yet may be gone
 * already, and some servers never report an object created and deleted between two sync
 * tokens (Xandikos). `settlePushed` asks the server about them.
 */
import type { SyncObject } from "../core/types.js";
import { forgetEcho, hasPending } from "./log.js";
import type { Outbox } from "./outbox.js";
import type { OutboxEntry, WriteTarget } from "./types.js";

export interface SettleOptions {
  pair: string;
  signal?: AbortSignal;
  /** Drops the object from the local copy (the pusher's `onRemote`, called with null). */
  onRemote?(entry: OutboxEntry, remote: SyncObject | null): unknown;
}

/**
 * Checks the objects pushed as creates that no pull has reported since: each one the server no
 * longer has (and with no pending local change) is dropped from the local copy. Call it after a
 * pull; it costs one `fetch` per such object. Resolves with the number dropped.
 * @example
 * await runSync(scope, { ...mirror.callbacks, store });
 * await settlePushed(target, mirror.outbox, { pair, ...mirror.pushCallbacks });
 */
export async function settlePushed(
  target: WriteTarget,
  outbox: Outbox,
  options: SettleOptions,
): Promise<number> {
  const { pair } = options;
  const signal = options.signal ?? new AbortController().signal;
  const doc = await outbox.read(pair);
  let dropped = 0;
  for (const echo of doc.echoes) {
    if (echo.created === undefined || hasPending(doc, echo.sourcekey)) continue;
    if (await target.fetch(echo.sourcekey, { signal })) continue;
    const entry: OutboxEntry = {
      kind: "delete",
      seq: 0,
      at: Date.now(),
      localId: echo.created,
      sourcekey: echo.sourcekey,
    };
    const still = await outbox.read(pair);
    if (hasPending(still, echo.sourcekey)) continue;
    // The copy first: a crash before the echo is forgotten just repeats this (idempotent).
    await options.onRemote?.(entry, null);
    await outbox.update(pair, (d) => forgetEcho(d, echo.sourcekey));
    dropped++;
  }
  return dropped;
}
