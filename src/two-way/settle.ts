/**
 * After a pull: the app's copy holds versions our pushes wrote (or the pusher handed it, see
 * `onRemote`) that no pull has reported yet. Most servers report them on the next pull, but one
 * that diffs by content (Xandikos) says nothing about an object created and deleted, or changed
 * back to the version the pull saw last, between two sync tokens. `settlePushed` asks the server
 * about those objects.
 */
import type { SyncObject } from "../core/types.js";
import {
  type Echo,
  echoLocalId,
  echoMatches,
  forgetEcho,
  hasPending,
  type OutboxDoc,
} from "./log.js";
import type { Outbox } from "./outbox.js";
import type { OutboxEntry, WriteTarget } from "./types.js";

export interface SettleOptions {
  pair: string;
  signal?: AbortSignal;
  /**
   * Puts the server's version in the local copy, or drops the object when it is `null` (the
   * pusher's `onRemote`).
   */
  onRemote?(entry: OutboxEntry, remote: SyncObject | null): unknown;
}

/**
 * Checks every object our pushes wrote (or the pusher handed the copy) that no pull has reported
 * since: one the server no longer has is dropped from the local copy, one the server holds in
 * another version is replaced by it (objects with pending local changes are left to the push).
 * Each is checked once: a pull reports later changes as usual. Call it after a complete pull,
 * never during one (a pull still to report our version would deliver it as a remote edit). It
 * costs one `fetch` per such object. Resolves with the number of objects corrected.
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
  let corrected = 0;
  for (const echo of doc.echoes) {
    // Echoes written before the copy's local id was kept name only created objects.
    const localId = echoLocalId(echo);
    if (localId === undefined || hasPending(doc, echo.sourcekey)) continue;
    const remote = await target.fetch(echo.sourcekey, { signal });
    // The pull or a push may have moved on meanwhile: act only on the echo we checked.
    const still = await outbox.read(pair);
    if (hasPending(still, echo.sourcekey) || !still.echoes.some((e) => sameEcho(e, echo))) continue;
    if (remote && echoMatches(echo, remote)) {
      await outbox.update(pair, (d) => forget(d, echo));
      continue;
    }
    const entry: OutboxEntry = remote
      ? {
          kind: "update",
          seq: 0,
          at: Date.now(),
          localId,
          sourcekey: echo.sourcekey,
          data: remote.data,
        }
      : { kind: "delete", seq: 0, at: Date.now(), localId, sourcekey: echo.sourcekey };
    // The copy first: a crash before the echo is forgotten just repeats this (idempotent).
    await options.onRemote?.(entry, remote ?? null);
    await outbox.update(pair, (d) => forget(d, echo));
    corrected++;
  }
  return corrected;
}

const sameEcho = (a: Echo, b: Echo) =>
  a.sourcekey === b.sourcekey &&
  a.changeKey === b.changeKey &&
  a.fp === b.fp &&
  echoLocalId(a) === echoLocalId(b);

/** Forgets `echo` if it is still the one remembered for its object. */
function forget(doc: OutboxDoc, echo: Echo): boolean {
  if (!doc.echoes.some((e) => sameEcho(e, echo))) return false;
  forgetEcho(doc, echo.sourcekey);
  return true;
}
