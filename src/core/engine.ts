/**
 * The one paging / importing / checkpointing loop every adapter runs through.
 */
import { deliveredUpTo, ResumedPage, withPending } from "./delivered.js";
import {
  ArgumentError,
  CursorStalledError,
  ImporterError,
  type ImporterHook,
  ProtocolError,
  StateError,
} from "./errors.js";
import { isPromiseLike, moveAsDeleteAndCreate } from "./move.js";
import { quote } from "./quote.js";
import { ReadAhead } from "./read-ahead.js";
import type { ChangeSource, Page, PageRequest, ResumePoint, ScopeDefinition } from "./source.js";
import { decodeState, encodeState, type StateEnvelope, sameWindow } from "./state.js";
import type {
  Change,
  DeleteFlags,
  Importer,
  SyncOptions,
  SyncOutcome,
  SyncWindow,
  UpdateFlags,
} from "./types.js";

/**
 * Runs one sync round: calls the importer for every change since `state` and resolves with the
 * next state. The returned state covers exactly the changes whose importer call resolved.
 */
export async function exportChanges(
  def: ScopeDefinition,
  importer: Importer,
  state: string | null | undefined,
  options: SyncOptions = {},
): Promise<SyncOutcome> {
  checkArguments(def, importer, options);
  // Its own signal per round, not one shared by every round of the process: each round's
  // read-ahead and requests listen on it, and concurrent rounds would pile listeners on one.
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const start = readState(def, state, options.window);
  const { source } = def;
  const window = start.window;
  const fullSync = start.fullSync === true;
  // The identity, once known (see checkIdentity below).
  let backend: string | undefined;
  let cursor = start.cursor;
  let page = start.page;
  // What a round stopped inside this page had processed there (see delivered.ts).
  let delivered = start.delivered;
  let imported = 0;
  let pages = 0;
  const limit = options.maxChanges ?? Number.POSITIVE_INFINITY;
  const counts = { update: 0, delete: 0, read: 0, move: 0 };
  const envelope = (patch: Partial<StateEnvelope>): string =>
    encodeState({
      adapter: def.adapter,
      scope: def.scope,
      cursor,
      window,
      backend,
      fullSync: fullSync || undefined,
      ...patch,
    });

  // A diff against the cursor, or a listing resumed inside a page, may not show what became of
  // an object a crashed round delivered (see `reportsByContent`): mark it for verification first.
  // A full sync from nothing needs no marks until its first checkpoint: a crash before it starts
  // over from nothing and sweeps. `pending` collects the round's marks for `runSync`.
  const fromNothing =
    fullSync && cursor === undefined && page === undefined && delivered === undefined;
  const marks = source.reportsByContent === true;
  let markPages = marks && !fromNothing;
  const pending = markPages ? new Set<string>() : undefined;
  const pendingState = (): string | undefined =>
    pending?.size
      ? encodeState({
          ...start,
          backend,
          delivered: withPending(start.delivered, pending),
        })
      : undefined;
  const ahead = source.readAhead ? new ReadAhead(source as ChangeSource, signal) : undefined;
  try {
    if (ahead && source.identity && start.backend === undefined) {
      // A state that names no backend has nothing to check against the identity, which then
      // only labels the states this round writes: the first page is already on its way.
      await ahead.begin({ cursor, page, fullSync, window, signal });
    }
    backend = await checkIdentity(def, start, signal);
    if (fromNothing) await callHook(importer, "beginFullSync");
    for (;;) {
      signal.throwIfAborted();
      const request: PageRequest = { cursor, page, fullSync, window, signal };
      const result: Page = await (ahead ? ahead.fetch(request) : source.fetchPage(request));
      pages++;
      checkPaging(def, result, cursor, page);
      if (ahead && result.nextPage !== undefined) {
        // Before the page's changes are read: a source may map them lazily (a getter), so the
        // server builds the next page meanwhile. The next request carries newCursor (when
        // given) and nextPage, as the loop below does. Requested even when maxChanges stops
        // this round: the next round starts there.
        await ahead.prefetch({
          ...request,
          cursor: result.newCursor ?? cursor,
          page: result.nextPage,
        });
      }
      checkChanges(def, result);
      const resumed =
        delivered === undefined
          ? undefined
          : await ResumedPage.open(def, result.changes, delivered, request);
      const changes = resumed ? resumed.changes : result.changes;
      if (markPages && changes.length > 0) {
        const keys = changes.map((c) => c.object.sourcekey);
        if (pending) for (const key of keys) pending.add(key);
        await options.onCheckpoint?.(envelope({ page, delivered: withPending(delivered, keys) }));
      }
      for (let i = 0; i < changes.length; i++) {
        if (signal.aborted) signal.throwIfAborted();
        if (resumed?.skips(i)) continue;
        const change = changes[i] as Change;
        const applied = applyChange(importer, change);
        if (applied !== undefined) {
          try {
            await applied;
          } catch (cause) {
            throw new ImporterError(change, cause);
          }
        }
        counts[change.kind]++;
        imported++;
        if (imported >= limit && i + 1 < changes.length) {
          const resume = resumed === undefined ? resumePoint(change) : undefined;
          let stopped: string;
          if (resume === undefined) {
            ahead?.keep(request, result);
            const processed = resumed ? resumed.deliveredUpTo(i) : deliveredUpTo(changes, i);
            stopped = envelope({ page, delivered: processed });
          } else {
            stopped = envelope({ cursor: resume.cursor ?? cursor, page: resume.page });
          }
          return {
            state: stopped,
            complete: false,
            fullSync,
            counts,
            pages,
            pendingState: pendingState(),
          };
        }
      }
      if (result.newCursor !== undefined) cursor = result.newCursor;
      delivered = undefined;
      page = result.nextPage;
      if (page === undefined) break;
      const checkpoint = envelope({ page });
      if (options.onCheckpoint) await options.onCheckpoint(checkpoint);
      markPages = marks; // a crash from here on resumes at this checkpoint, not from nothing
      if (imported >= limit) {
        return {
          state: checkpoint,
          complete: false,
          fullSync,
          counts,
          pages,
          pendingState: pendingState(),
        };
      }
    }
  } catch (error) {
    ahead?.drop();
    throw error;
  } finally {
    ahead?.end();
  }
  if (cursor === undefined) {
    throw new ProtocolError(
      `${def.adapter} ${def.scope}`,
      "the last page of a full sync carried no cursor",
    );
  }
  if (fullSync) await callHook(importer, "endFullSync");
  return {
    state: envelope({ fullSync: undefined, page: undefined }),
    complete: true,
    fullSync,
    counts,
    pages,
    pendingState: pendingState(),
  };
}

async function checkIdentity(
  def: ScopeDefinition,
  start: StateEnvelope,
  signal: AbortSignal,
): Promise<string | undefined> {
  if (!def.source.identity) return undefined;
  const identity = await def.source.identity(signal);
  if (start.backend !== undefined && start.backend !== identity) {
    throw new StateError(
      `state was made against ${quote(start.backend)}, not ${quote(identity)} ` +
        `(${def.adapter} ${def.scope}): it belongs to another backend`,
    );
  }
  return identity;
}

async function callHook(importer: Importer, hook: ImporterHook): Promise<void> {
  try {
    await importer[hook]?.();
  } catch (cause) {
    throw new ImporterError(hook, cause);
  }
}

function resumePoint(change: Change): ResumePoint | undefined {
  const { position } = change;
  if (position === undefined) return undefined;
  return (typeof position === "function" ? position() : position) as ResumePoint;
}

// The flags handed to the importer: one frozen object each, not one allocation per change.
const CREATED: UpdateFlags = Object.freeze({ created: true });
const UPDATED: UpdateFlags = Object.freeze({ created: false });
const SOFT: DeleteFlags = Object.freeze({ soft: true });
const HARD: DeleteFlags = Object.freeze({ soft: false });

/** Calls the importer method for one change; returns a promise only when the importer did. */
export function applyChange(importer: Importer, change: Change): PromiseLike<unknown> | undefined {
  let result: unknown;
  try {
    switch (change.kind) {
      case "update":
        result = importer.update?.(change.object, change.created ? CREATED : UPDATED);
        break;
      case "delete":
        result = importer.delete?.(change.object, change.soft ? SOFT : HARD);
        break;
      case "read":
        result = importer.read?.(change.object, change.isRead);
        break;
      case "move":
        if (importer.moved) {
          result = importer.moved(change.object, { fromParentKey: change.fromParentKey });
        } else {
          result = moveAsDeleteAndCreate(importer, change);
        }
        break;
    }
  } catch (cause) {
    throw new ImporterError(change, cause);
  }
  return isPromiseLike(result) ? result : undefined;
}

function checkArguments(def: ScopeDefinition, importer: Importer, options: SyncOptions): void {
  if (importer === null || typeof importer !== "object") {
    throw new ArgumentError(
      `importer must be an object, got ${importer === null ? "null" : typeof importer}`,
    );
  }
  const { maxChanges } = options;
  if (maxChanges !== undefined && !(Number.isInteger(maxChanges) && maxChanges > 0)) {
    throw new ArgumentError(`maxChanges must be a positive integer, got ${String(maxChanges)}`);
  }
  if (options.window) checkWindow(def, options.window);
}

function checkWindow(def: ScopeDefinition, window: SyncWindow): void {
  const allowed = def.windowKeys ?? [];
  for (const key of Object.keys(window) as (keyof SyncWindow)[]) {
    if (window[key] === undefined) continue;
    if (!allowed.includes(key)) {
      throw new ArgumentError(
        `${def.adapter} ${def.scope} does not support the window option "${key}"` +
          (allowed.length ? ` (supported: ${allowed.join(", ")})` : ""),
      );
    }
  }
  const { daysWithin, timeMin, timeMax } = window;
  if (daysWithin !== undefined && !(Number.isInteger(daysWithin) && daysWithin > 0)) {
    throw new ArgumentError(`daysWithin must be a positive integer, got ${String(daysWithin)}`);
  }
  for (const [name, value] of [
    ["timeMin", timeMin],
    ["timeMax", timeMax],
  ] as const) {
    if (value !== undefined && Number.isNaN(Date.parse(value))) {
      throw new ArgumentError(
        `${name} must be an ISO 8601 date-time, got ${JSON.stringify(value)}`,
      );
    }
  }
}

function readState(
  def: ScopeDefinition,
  state: string | null | undefined,
  window: SyncWindow | undefined,
): StateEnvelope {
  const cleanWindow = window ? dropUndefined(window) : undefined;
  if (state === undefined || state === null) {
    return { adapter: def.adapter, scope: def.scope, fullSync: true, window: cleanWindow };
  }
  const env = decodeState(state, def.adapter, def.scope);
  if (cleanWindow && !sameWindow(cleanWindow, env.window)) {
    throw new StateError(
      `state was made with window ${JSON.stringify(env.window ?? {})}, ` +
        `not ${JSON.stringify(cleanWindow)}: start a full sync to change the window`,
    );
  }
  validatePart(def, "cursor", def.source.cursorSchema, env.cursor);
  validatePart(def, "page", def.source.pageSchema, env.page);
  if (env.cursor === undefined && env.page === undefined && !env.fullSync) {
    throw new StateError("state is corrupt: it holds neither a cursor nor a page");
  }
  return env;
}

function validatePart(
  def: ScopeDefinition,
  what: string,
  schema: ChangeSource["cursorSchema"],
  value: unknown,
): void {
  if (!schema || value === undefined) return;
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `.${issue.path.join(".")}` : "";
    throw new StateError(
      `state is corrupt: ${def.adapter} ${what}${where}: ${issue?.message ?? "invalid"}`,
    );
  }
}

function checkPaging(def: ScopeDefinition, result: Page, cursor: unknown, page: unknown): void {
  const endpoint = () => `${def.adapter} ${def.scope}`;
  if (result === null || typeof result !== "object") {
    throw new ProtocolError(endpoint(), "fetchPage must resolve with { changes: Change[] }");
  }
  if (
    result.nextPage !== undefined &&
    page !== undefined &&
    JSON.stringify(result.nextPage) === JSON.stringify(page) &&
    JSON.stringify(result.newCursor ?? cursor) === JSON.stringify(cursor)
  ) {
    throw new CursorStalledError(
      `${endpoint()}: the adapter returned the page token it was given; paging would never end`,
    );
  }
}

function checkChanges(def: ScopeDefinition, result: Page): void {
  if (!Array.isArray(result.changes)) {
    throw new ProtocolError(
      `${def.adapter} ${def.scope}`,
      "fetchPage must resolve with { changes: Change[] }",
    );
  }
}

function dropUndefined(window: SyncWindow): SyncWindow | undefined {
  const out: SyncWindow = {};
  if (window.daysWithin !== undefined) out.daysWithin = window.daysWithin;
  if (window.timeMin !== undefined) out.timeMin = window.timeMin;
  if (window.timeMax !== undefined) out.timeMax = window.timeMax;
  return Object.keys(out).length ? out : undefined;
}
