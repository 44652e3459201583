/**
 * The state envelope: a versioned, URL-safe string that names the adapter and scope and holds
 * the backend's cursor, the window of the full sync and, mid-round, where to resume.
 *
 *   ds1.<base64url(JSON)>
 */
import { z } from "zod";
import { record } from "./delivered.js";
import { StateError } from "./errors.js";
import { quote } from "./quote.js";
import type { SyncWindow } from "./types.js";

const PREFIX = "ds1.";

const windowSchema = z
  .object({
    daysWithin: z.number().int().positive().optional(),
    timeMin: z.string().optional(),
    timeMax: z.string().optional(),
  })
  .strict();

const envelopeSchema = z
  .object({
    v: z.literal(1),
    /** adapter id */
    a: z.string().min(1),
    /** scope */
    s: z.string().min(1),
    /** the backend cursor covering every change imported so far (absent: full sync not done) */
    c: z.unknown().optional(),
    /** page token to continue the current round with */
    p: z.unknown().optional(),
    /** legacy (skip count): read but ignored, the page is replayed from its first change */
    k: z.number().int().positive().optional(),
    /** keys processed in the page being resumed, each with its changes' fingerprints */
    d: z.record(z.string(), z.string().min(1).max(4096)).optional(),
    /** what identifies the backend and scope the cursor belongs to */
    b: z.string().min(1).max(2048).optional(),
    /** true while a full sync is in progress */
    f: z.literal(true).optional(),
    /** the window the full sync used */
    w: windowSchema.optional(),
  })
  .strict();

/** The decoded state. Cursor and page are the adapter's own JSON values. */
export interface StateEnvelope {
  adapter: string;
  scope: string;
  cursor?: unknown;
  page?: unknown;
  /** Keys processed since `(cursor, page)` with their changes' fingerprints (see delivered.ts). */
  delivered?: Record<string, string>;
  /** The source's identity (server epoch, collection URL, …) when it has one. */
  backend?: string;
  fullSync?: boolean;
  window?: SyncWindow;
}

export function encodeState(env: StateEnvelope): string {
  const raw: Record<string, unknown> = { v: 1, a: env.adapter, s: env.scope };
  if (env.cursor !== undefined) raw.c = env.cursor;
  if (env.page !== undefined) raw.p = env.page;
  if (env.delivered && Object.keys(env.delivered).length > 0) raw.d = env.delivered;
  if (env.backend !== undefined) raw.b = env.backend;
  if (env.fullSync) raw.f = true;
  if (env.window && Object.keys(env.window).length > 0) raw.w = env.window;
  return PREFIX + Buffer.from(JSON.stringify(raw), "utf8").toString("base64url");
}

/**
 * Decodes and validates a state string for the given adapter and scope.
 * @throws StateError when it is corrupt or belongs to another adapter or scope.
 */
export function decodeState(state: string, adapter: string, scope: string): StateEnvelope {
  if (typeof state !== "string") {
    throw new StateError(`state must be a string, got ${typeof state}`);
  }
  if (!state.startsWith(PREFIX)) {
    throw new StateError(`state is not a deltasync state (expected the "${PREFIX}" prefix)`);
  }
  const body = state.slice(PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) {
    throw new StateError("state is corrupt: not base64url");
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch (cause) {
    throw new StateError("state is corrupt: not JSON", { cause });
  }
  const parsed = envelopeSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "envelope";
    throw new StateError(`state is corrupt: ${where}: ${issue?.message ?? "invalid"}`);
  }
  const e = parsed.data;
  if (e.a !== adapter || e.s !== scope) {
    throw new StateError(
      `state belongs to adapter ${quote(e.a)} scope ${quote(e.s)}, ` +
        `not adapter ${quote(adapter)} scope ${quote(scope)}`,
    );
  }
  return {
    adapter: e.a,
    scope: e.s,
    cursor: e.c,
    page: e.p,
    // From the parsed JSON, not zod's copy: a key may be `__proto__`.
    delivered: e.d && record(Object.entries((json as { d: Record<string, string> }).d)),
    backend: e.b,
    fullSync: e.f,
    window: e.w,
  };
}

export function sameWindow(a: SyncWindow | undefined, b: SyncWindow | undefined): boolean {
  const norm = (w: SyncWindow | undefined) =>
    JSON.stringify([w?.daysWithin ?? null, w?.timeMin ?? null, w?.timeMax ?? null]);
  return norm(a) === norm(b);
}

/**
 * The state of a full sync that has not started: what the orchestrator saves before it resets
 * an importer, so a failure afterwards can never bring the refused state back.
 */
export function fullSyncState(adapter: string, scope: string, window?: SyncWindow): string {
  return encodeState({ adapter, scope, fullSync: true, window });
}
