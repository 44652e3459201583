/**
 * The pusher: drains one pair's outbox into a `WriteTarget`, one entry at a time in outbox order,
 * never two runs at once per pair. An entry leaves the outbox only after the server confirmed
 * it (compare-and-set), so a crash or an abort resumes at exactly that entry.
 */
import {
  ConflictError,
  NotFoundError,
  NotSupportedError,
  PushBlockedError,
  PushRaceError,
} from "../core/errors.js";
import { type RetryPolicy, resolveRetryPolicy, retryDelay } from "../core/retry.js";
import { sleep } from "../core/sleep.js";
import type { SyncObject } from "../core/types.js";
import { defaultRunner, type KeyedRunner } from "../orchestrator/keyed.js";
import {
  complete,
  delivered,
  dropObject,
  type OutboxDoc,
  openConflict,
  rewriteHead,
} from "./log.js";
import { checkMassChange, type MassChangeGuard } from "./mass-change.js";
import type { Outbox } from "./outbox.js";
import type {
  Conflict,
  ConflictKind,
  ConflictPolicy,
  OutboxEntry,
  Resolution,
  WriteContext,
  WriteResult,
  WriteTarget,
} from "./types.js";

export interface PushOptions {
  /** The pair to drain (the key its entries were recorded under). */
  pair: string;
  /** What to do on a conflict. Default `"ask"`: pause the pair until `outbox.resolve`. */
  policy?: ConflictPolicy;
  /**
   * Delete-vs-modify conflicts: `"keep-edit"` (default) keeps the changed version whoever
   * deleted (a local delete yields to a remote edit; a local edit re-creates an object the
   * server deleted); `"policy"` hands them to `policy` like any other conflict.
   */
  deleteConflicts?: "keep-edit" | "policy";
  /** Retries of transient failures per entry (default 5, backoff with jitter, `Retry-After`). */
  retry?: RetryPolicy | false;
  signal?: AbortSignal;
  /** The per-pair runner; default one per process (shared with nothing else). */
  runner?: KeyedRunner;
  /** Stop after this many entries (the rest stays for the next push). */
  maxEntries?: number;
  /**
   * After the server accepted an entry and before the outbox forgets it: write the result (new
   * sourcekey and changeKey, the server's object when known) back to the local copy. Called
   * again for the same entry after a crash; must be idempotent. `result` is null for a delete.
   * When `info.last` (no later pending entry of this object) and `result.object` is given, the
   * copy should take `result.object` whole: the pull skipped the object while it was pending,
   * and the server's version may carry changes a conditional write does not guard (a read flag
   * set meanwhile, a move, the server's normalisation).
   */
  onPushed?(entry: OutboxEntry, result: WriteResult | null, info: { last: boolean }): unknown;
  /**
   * A conflict was resolved for the server: the local copy must take `remote` (null: the object
   * is gone) instead of the dropped local changes. Also called after a delete replayed after a
   * crash found the object still there, moved (a message in Trash). Must be idempotent.
   */
  onRemote?(entry: OutboxEntry, remote: SyncObject | null): unknown;
  /** Each conflict met, as it is recorded (also on `outbox.conflictEvents()`). */
  onConflict?(conflict: Conflict): unknown;
  /**
   * The mass-change guard: when the pair's pending deletes exceed the threshold (default: more
   * than 50 % of `size()` and more than 20), `push` throws `MassChangeError` before writing
   * anything. `createSqliteMirror`'s `pushCallbacks` carry one.
   */
  massChange?: MassChangeGuard | false;
  /** Push the deletes a `MassChangeError` stopped (the app confirmed them). */
  confirmMassChange?: boolean;
}

export interface PushResult {
  pair: string;
  /** Entries written (or found already written) and removed from the outbox in this run. */
  pushed: number;
  /** `done`: the outbox is empty; `paused`: an open conflict waits; `limit`: `maxEntries` hit. */
  status: "done" | "paused" | "limit";
  /** The open conflict when paused. */
  conflict?: Conflict;
  /** Conflicts resolved by the policy in this run. */
  resolved: Conflict[];
}

/**
 * Pushes a pair's pending local changes, in order.
 * @example
 * const target = memoryWriteTarget(server, folder.sourcekey);
 * const result = await push(target, outbox, { pair: "memory:alice/f1", policy: "ask" });
 * if (result.status === "paused") showConflict(result.conflict);
 */
export function push(
  target: WriteTarget,
  outbox: Outbox,
  options: PushOptions,
): Promise<PushResult> {
  const runner = options.runner ?? defaultRunner;
  return runner.run(`push:${options.pair}`, () => drain(target, outbox, options));
}

type Attempt =
  | { ok: true; result: WriteResult | null; fetched?: true; left?: SyncObject }
  | { ok: false; conflict: Conflict };

async function drain(
  target: WriteTarget,
  outbox: Outbox,
  options: PushOptions,
): Promise<PushResult> {
  const { pair } = options;
  const signal = options.signal ?? new AbortController().signal;
  const ctx: WriteContext = { signal };
  const retry = resolveRetryPolicy(options.retry);
  const out: PushResult = { pair, pushed: 0, status: "done", resolved: [] };

  /** Runs one target call, retrying transient failures with backoff. */
  const call = async <R>(fn: () => Promise<R>): Promise<R> => {
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      try {
        return await fn();
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (attempt > retry.retries || !retry.retryable(error)) throw error;
        await sleep(retryDelay(attempt, error, retry), signal);
      }
    }
  };

  const write = (e: OutboxEntry): Promise<WriteResult | null> => {
    switch (e.kind) {
      case "create":
        return target.create(e, ctx);
      case "update":
        return target.update(e, ctx);
      case "delete":
        return target.delete(e, ctx).then(() => null);
      case "move":
        if (!target.move) throw new NotSupportedError(`${target.id} can't move objects`);
        return target.move(e, ctx);
      case "read":
        if (!target.read) throw new NotSupportedError(`${target.id} has no read flag`);
        return target.read(e, ctx);
    }
  };

  const attempt = async (e: OutboxEntry): Promise<Attempt> => {
    try {
      return { ok: true, result: await call(() => write(e)) };
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const gone = error instanceof NotFoundError && e.kind !== "create";
      if (!(error instanceof ConflictError) && !gone) {
        throw new PushBlockedError(pair, e, error);
      }
    }
    // The server refused the condition (or the object is gone): look at what it holds now.
    let remote: SyncObject | undefined;
    try {
      remote = await call(() => target.fetch(e.sourcekey, ctx));
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new PushBlockedError(pair, e, error);
    }
    if (e.kind === "delete" && !remote) return { ok: true, result: null };
    if (remote && target.applied(e, remote)) {
      // Our own earlier write (it landed before a crash): done, nothing conflicts. A delete
      // that leaves an object (a message moved to Trash) ends like a delete that answered: no
      // result, so the server's object is not remembered as our echo. A pull since the crash
      // skipped that object (its delete was pending) and will not report it again: the copy
      // takes it through `onRemote`.
      if (e.kind === "delete") return { ok: true, result: null, left: remote };
      return {
        ok: true,
        result: { sourcekey: remote.sourcekey, changeKey: remote.changeKey, object: remote },
        fetched: true,
      };
    }
    const kind: ConflictKind =
      e.kind === "create"
        ? "create"
        : !remote
          ? "remote-delete"
          : e.kind === "delete"
            ? "local-delete"
            : "edit";
    const conflict: Conflict = {
      id: `${pair}#${e.seq}`,
      pair,
      kind,
      entry: e,
      remote: remote ?? null,
      base: e.kind === "create" ? undefined : e.changeKey,
      at: Date.now(),
      status: "open",
    };
    return { ok: false, conflict };
  };

  const coversAll = target.changeKeyCoversAll === true;

  /** Carries out a resolved conflict: drop the object's entries, or rewrite the head. */
  const apply = async (c: Conflict): Promise<void> => {
    const head = c.entry;
    const resolution = c.resolution as Resolution;
    const next =
      resolution === "remote" ? undefined : rewritten(target, head, c.remote, resolution);
    if (!next) {
      await options.onRemote?.(head, c.remote);
      const ok = await outbox.update(pair, (doc) => {
        const dropped = dropObject(doc, head.seq);
        const stored = doc.conflicts.find((x) => x.id === c.id);
        if (!dropped || !stored) return false;
        if (c.remote) delivered(doc, head.localId, c.remote, { byChangeKey: coversAll });
        stored.applied = true;
        stored.dropped = dropped;
        return true;
      });
      if (!ok)
        throw new PushRaceError(`push ${pair}: entry #${head.seq} was handled by another pusher`);
      return;
    }
    const ok = await outbox.update(pair, (doc) => {
      const stored = doc.conflicts.find((x) => x.id === c.id);
      if (!stored || !rewriteHead(doc, head.seq, next)) return false;
      stored.applied = true;
      return true;
    });
    if (!ok)
      throw new PushRaceError(`push ${pair}: entry #${head.seq} was handled by another pusher`);
  };

  if (options.massChange) {
    const deletes = (await outbox.read(pair)).entries.filter((e) => e.kind === "delete").length;
    if (deletes > 0) {
      const size = await options.massChange.size();
      checkMassChange(pair, "push", deletes, size, options.massChange, options.confirmMassChange);
    }
  }

  // The document as the last commit saved it (fresh: the commit's compare-and-set saw the
  // latest); read again after anything else.
  let latest: OutboxDoc | undefined;
  for (;;) {
    signal.throwIfAborted();
    const doc = latest ?? (await outbox.read(pair));
    latest = undefined;
    const open = openConflict(doc);
    if (open) return { ...out, status: "paused", conflict: open };
    const head = doc.entries[0];
    if (!head) return out;
    const decided = doc.conflicts.find(
      (c) => c.entry.seq === head.seq && c.status === "resolved" && !c.applied,
    );
    if (decided) {
      await apply(decided);
      continue;
    }
    if (options.maxEntries !== undefined && out.pushed >= options.maxEntries) {
      return { ...out, status: "limit" };
    }
    const result = await attempt(head);
    if (result.ok) {
      const last = !doc.entries.some((e, i) => i > 0 && e.localId === head.localId);
      await options.onPushed?.(head, result.result, { last });
      if (result.left) await options.onRemote?.(head, result.left);
      // A version `fetch` found is known by its contents, unless the target's changeKey covers
      // everything: a GET and the pull's sync report may serialise one version differently
      // (Cyrus, Radicale), while a changeKey that ignores folders and flags (the memory
      // server's) would take a remote move or flag change for ours (both found by the kit).
      const byChangeKey = result.fetched === true && coversAll;
      // Replayable: lost to a power cut, the entry is written again and meets its own result.
      const done = await outbox.update(
        pair,
        (d) => {
          latest = d;
          if (!complete(d, head.seq, result.result, { byChangeKey })) return false;
          if (result.left) delivered(d, head.localId, result.left, { byChangeKey: coversAll });
          return true;
        },
        { replayable: true },
      );
      if (!done)
        throw new PushRaceError(`push ${pair}: entry #${head.seq} was pushed by another pusher`);
      out.pushed++;
      continue;
    }
    const conflict = result.conflict;
    const resolution = await decide(conflict, target, options);
    if (resolution !== "ask") {
      conflict.status = "resolved";
      conflict.resolution = resolution;
      conflict.resolvedBy = "policy";
    }
    const saved = await outbox.update(pair, (d) => {
      if (d.entries[0]?.seq !== head.seq || openConflict(d)) return false;
      // A rewritten entry keeps its seq and may conflict again: number its conflicts.
      const earlier = d.conflicts.filter((c) => c.entry.seq === head.seq).length;
      conflict.id = `${pair}#${head.seq}${earlier ? `.${earlier}` : ""}`;
      // A copy: the stored conflict changes later (resolved, applied), the emitted one does not.
      d.conflicts.push(structuredClone(conflict));
      return true;
    });
    if (!saved)
      throw new PushRaceError(`push ${pair}: entry #${head.seq} was handled by another pusher`);
    outbox.emit(conflict);
    await options.onConflict?.(conflict);
    if (resolution === "ask") return { ...out, status: "paused", conflict };
    out.resolved.push(conflict);
    // The loop carries the resolution out (the same path as one made through `outbox.resolve`).
  }
}

async function decide(
  c: Conflict,
  target: WriteTarget,
  options: PushOptions,
): Promise<Resolution | "ask"> {
  const deletion = c.kind === "local-delete" || c.kind === "remote-delete";
  if (deletion && (options.deleteConflicts ?? "keep-edit") === "keep-edit") {
    // vdirsyncer #128: never let a delete silently win over an edit.
    return c.kind === "local-delete" ? "remote" : "local";
  }
  const policy = options.policy ?? "ask";
  switch (policy) {
    case "ask":
      return "ask";
    case "server-wins":
      return "remote";
    case "client-wins":
      return "local";
    case "newest-wins": {
      const remoteAt = c.remote ? target.modifiedAt?.(c.remote) : undefined;
      // An unknown time or a tie can't pick a side: ask.
      if (remoteAt === undefined || remoteAt === c.entry.at) return "ask";
      return c.entry.at > remoteAt ? "local" : "remote";
    }
    default:
      return policy(structuredClone(c));
  }
}

/**
 * The head entry after a `local` or merged resolution: conditional on the server's current
 * version; a re-create under a fresh client-chosen key when the server deleted the object.
 * Undefined when there is nothing to write (a flag or a move of an object the server deleted).
 */
function rewritten(
  target: WriteTarget,
  head: OutboxEntry,
  remote: SyncObject | null,
  resolution: "local" | { merged: unknown },
): OutboxEntry | undefined {
  const merged = typeof resolution === "object";
  const data = merged ? resolution.merged : "data" in head ? head.data : undefined;
  const base = {
    seq: head.seq,
    at: head.at,
    localId: head.localId,
    ...(merged ? { merged: true as const } : {}),
  };
  if (!remote) {
    if (!merged && !("data" in head)) return undefined;
    const parentKey = "parentKey" in head ? head.parentKey : undefined;
    return {
      ...base,
      kind: "create",
      // A new key: the old one may stay taken by the deleted object.
      sourcekey: target.keyFor(`${head.localId}.${head.seq}`),
      replaces: head.replaces ?? head.sourcekey,
      ...(parentKey !== undefined ? { parentKey } : {}),
      data,
    };
  }
  const changeKey = remote.changeKey;
  const cond = changeKey !== undefined ? { changeKey } : {};
  if (merged || head.kind === "create" || head.kind === "update") {
    const parentKey = "parentKey" in head ? head.parentKey : undefined;
    return {
      ...base,
      kind: "update",
      sourcekey: remote.sourcekey,
      ...cond,
      ...(parentKey !== undefined ? { parentKey } : {}),
      data,
    };
  }
  return { ...head, ...cond } as OutboxEntry;
}
