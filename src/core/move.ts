/**
 * How a move reaches an importer without `moved` (types.ts: "a move arrives as `delete` +
 * `update(created)`"): the engine and the two-way guard, which adds `moved` to any importer,
 * both deliver it this way.
 */
import type { Change, Importer } from "./types.js";

/** Delivers a move as a delete from the old folder, then the object as created. */
export function moveAsDeleteAndCreate<T>(
  importer: Importer<T>,
  change: Extract<Change<T>, { kind: "move" }>,
): unknown {
  const { sourcekey, type } = change.object;
  const removed = importer.delete?.(
    { sourcekey, type, parentKey: change.fromParentKey },
    { soft: false },
  );
  const create = () => importer.update?.(change.object, { created: true });
  return isPromiseLike(removed) ? Promise.resolve(removed).then(create) : create();
}

/** True for a thenable (an importer method may return any promise-like value). */
export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
