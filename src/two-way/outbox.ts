/**
 * The outbox: local changes waiting to be pushed, one ordered log per pair, kept in any
 * `StateStore`: in rows where the store has them (`outboxRows`), else one document per pair,
 * saved with compare-and-set.
 */
import { type Observable, Subject } from "rxjs";
import { ArgumentError, NotFoundError, TransientError } from "../core/errors.js";
import type { SyncObject } from "../core/types.js";
import type { StateStore } from "../stores/types.js";
import {
  checkChange,
  hasPending,
  isEcho,
  type OutboxDoc,
  openConflict,
  parseDoc,
  record,
  serializeDoc,
} from "./log.js";
import type { OutboxRows } from "./outbox-rows.js";
import type { Conflict, LocalChange, OutboxEntry, Resolution } from "./types.js";

/** The pending local changes of every pair, their conflicts, and what was pushed last. */
export interface Outbox {
  /**
   * Records a local change of `pair` (e.g. `google:alice/calendar:primary`), coalesced with the
   * object's earlier pending changes. Resolves with the pending entry now holding it, or
   * undefined when it cancelled out (a create deleted before it was pushed).
   */
  record(pair: string, change: LocalChange): Promise<OutboxEntry | undefined>;
  /** The pending entries of `pair`, in push order. */
  pending(pair: string): Promise<OutboxEntry[]>;
  /** True when `sourcekey` has local changes in `pair` not yet pushed. */
  hasPending(pair: string, sourcekey: string): Promise<boolean>;
  /** True when `obj` is exactly the version one of our own pushes produced. */
  isEcho(pair: string, obj: SyncObject): Promise<boolean>;
  /** The seq of the last entry pushed in `pair` (0: none). */
  lastPushed(pair: string): Promise<number>;
  /** Open conflicts (pausing their pair); with `all`, resolved ones too. Every pair without `pair`. */
  conflicts(pair?: string, options?: { all?: boolean }): Promise<Conflict[]>;
  /** Resolves an open conflict; the next push of its pair carries the resolution out. */
  resolve(conflictId: string, resolution: Resolution): Promise<void>;
  /** Conflicts as they are opened and resolved (this process only). */
  conflictEvents(): Observable<Conflict>;
  /**
   * The pair of every local change as it is recorded (this process only): what `watch`'s
   * two-way mode pushes on. Emitted after the change is saved.
   */
  recorded(): Observable<string>;
  /** Announces on `recorded()` a change saved outside `record` (the SQLite mirror's edits). */
  announce(pair: string): void;
  /** Every pair with an outbox. */
  pairs(): Promise<string[]>;
  /** Reads a pair's document (the pusher's view). */
  read(pair: string): Promise<OutboxDoc>;
  /**
   * Applies `fn` to the pair's document and saves it with compare-and-set, re-reading and
   * re-applying on a lost race; `fn` must be a pure function of the document it is given.
   * `replayable`: losing this commit to a power cut is harmless (the pusher's completion of an
   * entry: it is written again and meets its own result), so the store may skip its fsync.
   */
  update<R>(
    pair: string,
    fn: (doc: OutboxDoc) => R,
    options?: { replayable?: boolean },
  ): Promise<R>;
  /** Announces a conflict on `conflictEvents()` (the pusher calls it). */
  emit(conflict: Conflict): void;
  close(): Promise<void>;
}

export interface OutboxOptions {
  /**
   * The row-per-entry storage to use instead of one document per pair. Default: the store's own
   * (`store.outboxRows()`: SQLite, PostgreSQL, memory), else documents (the file store).
   */
  rows?: OutboxRows;
  /** Key prefix in the store. Default `outbox:`. */
  prefix?: string;
  /** The clock (ms); tests pin it. */
  now?: () => number;
}

/** How many lost compare-and-set races in a row before giving up with a `TransientError`. */
const MAX_RACES = 50;

/**
 * Creates an outbox over a state store (`createSqliteStateStore(file)` is the embedded default;
 * `createPostgresStateStore` for several workers; `createMemoryStateStore` for tests).
 * @example
 * const outbox = createOutbox(createSqliteStateStore("app.sqlite", { table: "outbox" }));
 * await outbox.record("memory:alice/f1", { kind: "update", localId, sourcekey, changeKey, data });
 */
export function createOutbox(store: StateStore, options: OutboxOptions = {}): Outbox {
  const prefix = options.prefix ?? "outbox:";
  const now = options.now ?? Date.now;
  const events = new Subject<Conflict>();
  const changes = new Subject<string>();
  const keyOf = (pair: string) => {
    if (typeof pair !== "string" || pair === "") {
      throw new ArgumentError("outbox: pair must be a non-empty string");
    }
    return `${prefix}${pair}`;
  };
  // The last text of each pair this process wrote or checked: read again, it needs no schema check.
  const known = new Map<string, string>();
  const parse = (key: string, text: string | undefined) => {
    const doc = parseDoc(key, text, text !== undefined && known.get(key) === text);
    if (text !== undefined) known.set(key, text);
    return doc;
  };
  const rows = options.rows ?? store.outboxRows?.();
  const read = async (pair: string) => {
    const key = keyOf(pair);
    if (rows) return rows.read(key);
    return parse(key, await store.get(key));
  };
  const update = async <R>(
    pair: string,
    fn: (doc: OutboxDoc) => R,
    opts: { replayable?: boolean } = {},
  ): Promise<R> => {
    const key = keyOf(pair);
    // Rows: one transaction that writes only what changed (the store serialises writers).
    if (rows) return rows.update(key, fn, opts);
    for (let i = 0; i < MAX_RACES; i++) {
      const text = await store.get(key);
      const doc = parse(key, text);
      const result = fn(doc);
      const next = serializeDoc(doc);
      if (next === text) return result;
      if (await store.compareAndSet(key, text, next)) {
        known.set(key, next);
        return result;
      }
    }
    throw new TransientError(`outbox ${key}: lost ${MAX_RACES} compare-and-set races in a row`);
  };

  return {
    record: async (pair, change) => {
      checkChange(change);
      const at = now();
      const entry = await update(pair, (doc) => {
        const e = record(doc, structuredClone(change), at);
        return e && structuredClone(e);
      });
      changes.next(pair);
      return entry;
    },
    pending: async (pair) => structuredClone((await read(pair)).entries),
    hasPending: async (pair, sourcekey) => hasPending(await read(pair), sourcekey),
    isEcho: async (pair, obj) => isEcho(await read(pair), obj),
    lastPushed: async (pair) => (await read(pair)).cursor,
    async conflicts(pair, opts = {}) {
      const pairs = pair === undefined ? await this.pairs() : [pair];
      const out: Conflict[] = [];
      for (const p of pairs) {
        const doc = await read(p);
        out.push(...structuredClone(doc.conflicts.filter((c) => opts.all || c.status === "open")));
      }
      return out;
    },
    async resolve(conflictId, resolution) {
      checkResolution(resolution);
      const cut = conflictId.lastIndexOf("#");
      if (cut <= 0)
        throw new ArgumentError(`outbox: ${JSON.stringify(conflictId)} is not a conflict id`);
      const pair = conflictId.slice(0, cut);
      const resolved = await update(pair, (doc) => {
        const c = doc.conflicts.find((x) => x.id === conflictId);
        if (!c) return undefined;
        if (c.status === "open") {
          c.status = "resolved";
          c.resolution = resolution;
          c.resolvedBy = "app";
        }
        return structuredClone(c);
      });
      if (!resolved) throw new NotFoundError(`outbox: no conflict ${conflictId}`);
      events.next(resolved);
    },
    conflictEvents: () => events.asObservable(),
    recorded: () => changes.asObservable(),
    announce: (pair) => changes.next(pair),
    async pairs() {
      return (await (rows ? rows.keys() : store.keys()))
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length));
    },
    read,
    update,
    emit: (conflict) => events.next(conflict),
    async close() {
      events.complete();
      changes.complete();
      await store.close();
    },
  };
}

function checkResolution(resolution: Resolution): void {
  if (resolution === "local" || resolution === "remote") return;
  if (resolution !== null && typeof resolution === "object" && "merged" in resolution) return;
  throw new ArgumentError(
    `outbox: a resolution is "local", "remote" or { merged }, got ${JSON.stringify(resolution)}`,
  );
}

export { openConflict };
