/**
 * The mass-change guard (vdirsyncer's "storage suddenly empty"): one pull round or one push that
 * would delete more than a share of a collection pauses its pair until the app confirms. The
 * pull side (`runSync`'s `massChange`) and the push side (`push`'s `massChange`) share this check.
 */
import { MassChangeError } from "../core/errors.js";

/** What the guard needs to know about a collection, and its threshold. */
export interface MassChangeGuard {
  /**
   * Objects the collection holds before the round: for a pull, the local copy's size; for a
   * push, the server's as the app knows it (its copy plus its pending deletes, less its pending
   * creates). `createSqliteMirror` supplies both.
   */
  size(): number | Promise<number>;
  /**
   * Objects a full sync completing now would sweep from the copy (those it did not deliver).
   * Give it when the copy sweeps by generation; such a copy should keep its rows on `onReset`
   * and let the sweep, counted here and guarded like any delete, drop what is gone (as
   * `createSqliteMirror`'s `callbacks` do).
   */
  sweepSize?(): number | Promise<number>;
  /** Share of `size` a round may delete. Default 0.5. */
  share?: number;
  /** Deletes always allowed whatever the share (small collections). Default 20. */
  min?: number;
}

/** The default threshold: more than 50 % of the collection and more than 20 objects. */
export const MASS_CHANGE_DEFAULTS = { share: 0.5, min: 20 } as const;

/**
 * Throws `MassChangeError` when `deletes` of `size` objects exceed the guard's threshold and the
 * caller did not confirm.
 */
export function checkMassChange(
  pair: string,
  direction: "pull" | "push",
  deletes: number,
  size: number,
  guard: MassChangeGuard,
  confirmed: boolean | undefined,
): void {
  const threshold = {
    share: guard.share ?? MASS_CHANGE_DEFAULTS.share,
    min: guard.min ?? MASS_CHANGE_DEFAULTS.min,
  };
  if (confirmed) return;
  if (deletes > threshold.min && deletes > threshold.share * size) {
    throw new MassChangeError(pair, direction, deletes, size, threshold);
  }
}
