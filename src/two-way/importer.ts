/**
 * The pull side of two-way sync: an importer wrapper that keeps pending local edits and our own
 * pushes from coming back as remote changes.
 */
import { moveAsDeleteAndCreate } from "../core/move.js";
import type { Importer, SyncObject } from "../core/types.js";
import { forgetEcho, hasEcho, hasPending, isEcho } from "./log.js";
import type { Outbox } from "./outbox.js";

/**
 * Wraps the importer of a pair's pull so that:
 * - an object with local changes not yet pushed is left alone (the push's conditional write
 *   meets the remote change as a conflict instead of the pull overwriting the local edit);
 * - the version one of our pushes produced (echo) is not delivered as a remote edit; a move is
 *   checked as one change, then handed to `moved` or, without it, as `delete` + `update`.
 *
 * A full sync delivers every object, our own pushes' versions included (a sweeping importer
 * must see them), except objects with pending changes: a sweep at `endFullSync` must keep
 * those (`outbox.hasPending`), as the SQLite mirror does. A full sync resumed from a
 * checkpoint by a new wrapper (no `beginFullSync`) still suppresses echoes.
 *
 * The check and your write are not one transaction: a local edit recorded while a pull is
 * importing the same object can still be overwritten in your copy. `createSqliteMirror` with
 * `twoWay` does both in one SQLite transaction.
 * @example
 * await folder.sync(twoWayImporter(importer, outbox, "memory:alice/inbox"), state);
 */
export function twoWayImporter<T>(
  importer: Importer<T>,
  outbox: Outbox,
  pair: string,
): Importer<T> {
  /**
   * True when the pull must leave the object alone. An echo is consumed by the first version
   * of the object the pull sees: a later identical-looking one (moved away and back) is news.
   */
  // Inside a full sync every object must reach the importer, our own versions too: a sweeping
  // importer drops what the full sync did not deliver (found by the two-way conformance kit).
  let full = false;
  const skip = async (sourcekey: string, obj?: SyncObject) => {
    const doc = await outbox.read(pair);
    if (hasPending(doc, sourcekey)) return true;
    if (!hasEcho(doc, sourcekey)) return false;
    const echo = obj !== undefined && isEcho(doc, obj) && !full;
    await outbox.update(pair, (d) => forgetEcho(d, sourcekey));
    return echo;
  };
  return {
    ...importer,
    async beginFullSync() {
      full = true;
      return importer.beginFullSync?.();
    },
    async endFullSync() {
      full = false;
      return importer.endFullSync?.();
    },
    async update(obj, flags) {
      if (await skip(obj.sourcekey, obj)) return;
      return importer.update?.(obj, flags);
    },
    async delete(obj, flags) {
      if (await skip(obj.sourcekey)) return;
      return importer.delete?.(obj, flags);
    },
    async read(obj, isRead) {
      if (await skip(obj.sourcekey)) return;
      return importer.read?.(obj, isRead);
    },
    // Always a move here, even for an importer without `moved`: split into a delete and an
    // update, the delete would consume the echo and the update re-deliver our own version.
    async moved(obj, flags) {
      if (await skip(obj.sourcekey, obj)) return;
      if (importer.moved) return importer.moved(obj, flags);
      return moveAsDeleteAndCreate(importer, {
        kind: "move",
        object: obj,
        fromParentKey: flags.fromParentKey,
      });
    },
  };
}
