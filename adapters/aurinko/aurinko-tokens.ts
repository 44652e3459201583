/**
 * The two delta tokens of an Aurinko state, as the seed's `sync_updated_token` /
 * `sync_deleted_token`: `SyncResult` carries the state, this reads the tokens out of it.
 */
import { StateError } from "../../src/core/errors.js";
import { quote } from "../../src/core/quote.js";
import { decodeState } from "../../src/core/state.js";
import { StreamCursorSchema } from "./aurinko-stream.js";

/** Aurinko's tokens as of a state; `null` before a full sync has finished its updated stream. */
export interface AurinkoTokens {
  syncUpdatedToken: string | null;
  syncDeletedToken: string | null;
}

/**
 * The delta tokens of an Aurinko state (or of a `runSync` / `syncEmail` result).
 * @throws StateError when it is not an Aurinko stream state (a hierarchy has no tokens).
 * @example
 * const result = await syncEmail(aurinko, { store, onUpdated, onDeleted });
 * const { syncUpdatedToken, syncDeletedToken } = aurinkoTokens(result);
 */
export function aurinkoTokens(stateOrResult: string | { state: string }): AurinkoTokens {
  const state = typeof stateOrResult === "string" ? stateOrResult : stateOrResult.state;
  // The scope is read from the state itself: any stream scope of the adapter qualifies.
  const scope = peekScope(state);
  const env = decodeState(state, "aurinko", scope);
  if (env.cursor === undefined) return { syncUpdatedToken: null, syncDeletedToken: null };
  const cursor = StreamCursorSchema.safeParse(env.cursor);
  if (!cursor.success) {
    throw new StateError(`the aurinko state of ${quote(scope)} holds no delta tokens`);
  }
  return { syncUpdatedToken: cursor.data.updated, syncDeletedToken: cursor.data.deleted };
}

function peekScope(state: string): string {
  try {
    const json = JSON.parse(Buffer.from(state.slice(4), "base64url").toString("utf8")) as {
      s?: unknown;
    };
    return typeof json.s === "string" ? json.s : "";
  } catch {
    return "";
  }
}
