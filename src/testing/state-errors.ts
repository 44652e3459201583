/**
 * Checks that a scope rejects every bad state with a `StateError` and leaves nothing imported.
 */
import { ArgumentError, StateError } from "../core/errors.js";
import { encodeState } from "../core/state.js";
import type { Syncable } from "../core/syncable.js";
import { ConformanceError } from "./conformance.js";

/**
 * Feeds `syncable` corrupt, truncated, foreign and ill-typed states and wrong arguments; each must
 * reject with `StateError` (or `ArgumentError`) before any importer call.
 */
export async function checkStateErrors(syncable: Syncable): Promise<void> {
  const good = await syncable.sync({});
  const body = JSON.parse(Buffer.from(good.slice(4), "base64url").toString("utf8")) as Record<
    string,
    unknown
  >;
  const reencode = (patch: Record<string, unknown>) =>
    `ds1.${Buffer.from(JSON.stringify({ ...body, ...patch })).toString("base64url")}`;
  const bad: [string, unknown][] = [
    ["empty string", ""],
    ["not a deltasync state", "hello"],
    ["truncated", good.slice(0, Math.max(5, good.length >> 1))],
    ["not base64url", `${good}!`],
    ["not JSON", `ds1.${Buffer.from("{nope").toString("base64url")}`],
    [
      "another adapter",
      encodeState({ adapter: `${syncable.adapter}-other`, scope: syncable.scope, cursor: body.c }),
    ],
    [
      "another scope",
      encodeState({ adapter: syncable.adapter, scope: `${syncable.scope}/other`, cursor: body.c }),
    ],
    ["a future version", reencode({ v: 2 })],
    ["an unknown field", reencode({ x: 1 })],
    ["a cursor of the wrong shape", reencode({ c: { bogus: [true, null] } })],
    ["neither cursor nor page", reencode({ c: undefined, p: undefined })],
    ["not a string", 42],
  ];
  for (const [what, state] of bad) {
    let calls = 0;
    const count = () => {
      calls++;
    };
    try {
      await syncable.sync({ update: count, delete: count, read: count }, state as string);
    } catch (error) {
      if (!(error instanceof StateError)) {
        throw new ConformanceError(
          `${syncable.scope}: a state with ${what} must give StateError, got ${String(error)}`,
          { cause: error },
        );
      }
      if (calls)
        throw new ConformanceError(`${syncable.scope}: a state with ${what} reached the importer`);
      continue;
    }
    throw new ConformanceError(`${syncable.scope}: a state with ${what} was accepted`);
  }
  for (const maxChanges of [0, -1, 1.5, Number.NaN]) {
    try {
      await syncable.sync({}, good, { maxChanges });
    } catch (error) {
      if (error instanceof ArgumentError) continue;
      throw new ConformanceError(
        `${syncable.scope}: maxChanges ${maxChanges} must give ArgumentError, got ${String(error)}`,
      );
    }
    throw new ConformanceError(`${syncable.scope}: maxChanges ${maxChanges} was accepted`);
  }
}
