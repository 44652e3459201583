/**
 * The two-way kit's local copy: what a correct app keeps — rows by local id, local edits that
 * go through the outbox, a pull importer wrapped with `twoWayImporter` (which sweeps by
 * generation after a full sync and keeps rows with pending edits), and the pusher's
 * write-back. It also watches for echoes: a version our own push produced that the pull
 * delivers anyway.
 */
import type { Importer, SyncObject } from "../core/types.js";
import { twoWayImporter } from "../two-way/importer.js";
import { pendingKeys } from "../two-way/log.js";
import type { Outbox } from "../two-way/outbox.js";
import type { PushOptions } from "../two-way/push.js";

export interface CopyRow {
  localId: string;
  sourcekey: string;
  changeKey?: string;
  parentKey?: string;
  data: unknown;
  read?: boolean;
  /** The full-sync generation the row was last delivered in. */
  gen: number;
}

export class LocalCopy {
  readonly rows = new Map<string, CopyRow>();
  /** Echoes delivered by a pull (violations), described. */
  readonly echoes: string[] = [];
  /** Versions our pushes produced, by sourcekey, until a remote edit of the object. */
  readonly #pushed = new Map<string, Set<string>>();
  #n = 0;
  #gen = 0;
  #full = false;

  constructor(
    /** The outbox in use (replaced after a simulated crash). */
    readonly outbox: () => Outbox,
    readonly pair: string,
    readonly keyFor: (localId: string) => string,
    readonly readOf: (obj: SyncObject) => boolean | undefined,
  ) {}

  byKey(sourcekey: string): CopyRow | undefined {
    for (const r of this.rows.values()) if (r.sourcekey === sourcekey) return r;
    return undefined;
  }

  /** A remote client changed the object: a pull may deliver any version of it now. */
  remoteTouched(sourcekey: string): void {
    this.#pushed.delete(sourcekey);
  }

  #put(obj: SyncObject): void {
    // A full sync delivers every object, our own versions too.
    const echo =
      !this.#full &&
      obj.changeKey !== undefined &&
      this.#pushed.get(obj.sourcekey)?.has(obj.changeKey);
    if (echo) this.echoes.push(`${obj.sourcekey} at ${obj.changeKey}, our own push's version`);
    const row = this.byKey(obj.sourcekey);
    const next: CopyRow = {
      localId: row?.localId ?? `r${++this.#n}`,
      sourcekey: obj.sourcekey,
      data: structuredClone(obj.data),
      gen: this.#gen,
    };
    if (obj.changeKey !== undefined) next.changeKey = obj.changeKey;
    if (obj.parentKey !== undefined) next.parentKey = obj.parentKey;
    const read = this.readOf(obj);
    if (read !== undefined) next.read = read;
    this.rows.set(next.localId, next);
  }

  async #pending(): Promise<Set<string>> {
    return pendingKeys(await this.outbox().read(this.pair));
  }

  /** The pull importer (only what the outbox lets through reaches the rows). */
  importer(): Importer {
    const inner: Importer = {
      update: (obj) => this.#put(obj),
      moved: (obj) => this.#put(obj),
      delete: (obj) => {
        const row = this.byKey(obj.sourcekey);
        if (row) this.rows.delete(row.localId);
      },
      read: (obj, isRead) => {
        const row = this.byKey(obj.sourcekey);
        if (row) setRead(row, isRead);
      },
      reset: async () => {
        const keep = await this.#pending();
        for (const r of [...this.rows.values()])
          if (!keep.has(r.sourcekey)) this.rows.delete(r.localId);
      },
      beginFullSync: () => {
        this.#gen++;
        this.#full = true;
      },
      endFullSync: async () => {
        this.#full = false;
        const keep = await this.#pending();
        for (const r of [...this.rows.values()]) {
          if (r.gen < this.#gen && !keep.has(r.sourcekey)) this.rows.delete(r.localId);
        }
      },
    };
    const guarded = twoWayImporter(inner, this.outbox(), this.pair);
    // Only the first report of an object after our push can be an echo: delivery is at least
    // once, and a backend that verifies by content reports a version again (DAV marks).
    const seen = (sourcekey: string) => this.#pushed.delete(sourcekey);
    return {
      ...guarded,
      update: async (obj, flags) => {
        try {
          return await guarded.update?.(obj, flags);
        } finally {
          seen(obj.sourcekey);
        }
      },
      moved: async (obj, flags) => {
        try {
          return await guarded.moved?.(obj, flags);
        } finally {
          seen(obj.sourcekey);
        }
      },
      delete: async (obj, flags) => {
        try {
          return await guarded.delete?.(obj, flags);
        } finally {
          seen(obj.sourcekey);
        }
      },
    };
  }

  /** The pusher's write-back callbacks. */
  callbacks(): Pick<PushOptions, "onPushed" | "onRemote"> {
    return {
      onPushed: (entry, result, { last }) => {
        if (result?.changeKey !== undefined && !entry.merged) {
          const set = this.#pushed.get(result.sourcekey) ?? new Set<string>();
          set.add(result.changeKey);
          this.#pushed.set(result.sourcekey, set);
        }
        const row = this.rows.get(entry.localId);
        if (!row || !result) return;
        row.sourcekey = result.sourcekey;
        if (result.changeKey !== undefined) row.changeKey = result.changeKey;
        else delete row.changeKey;
        if (last && result.object) {
          row.data = structuredClone(result.object.data);
          if (result.object.parentKey !== undefined) row.parentKey = result.object.parentKey;
          const read = this.readOf(result.object);
          if (read !== undefined) row.read = read;
        }
      },
      onRemote: (entry, remote) => {
        this.rows.delete(entry.localId);
        if (!remote) return;
        const row: CopyRow = {
          localId: entry.localId,
          sourcekey: remote.sourcekey,
          data: structuredClone(remote.data),
          gen: this.#gen,
        };
        if (remote.changeKey !== undefined) row.changeKey = remote.changeKey;
        if (remote.parentKey !== undefined) row.parentKey = remote.parentKey;
        const read = this.readOf(remote);
        if (read !== undefined) row.read = read;
        this.rows.set(entry.localId, row);
      },
    };
  }

  #base(row: CopyRow) {
    return row.changeKey !== undefined ? { changeKey: row.changeKey } : {};
  }

  async create(parentKey: string, dataFor: (localId: string) => unknown): Promise<string> {
    const localId = `l${++this.#n}`;
    const data = dataFor(localId);
    const sourcekey = this.keyFor(localId);
    this.rows.set(localId, { localId, sourcekey, parentKey, data, gen: this.#gen });
    await this.outbox().record(this.pair, { kind: "create", localId, sourcekey, parentKey, data });
    return localId;
  }

  async update(row: CopyRow, data: unknown): Promise<void> {
    row.data = data;
    await this.outbox().record(this.pair, {
      kind: "update",
      localId: row.localId,
      sourcekey: row.sourcekey,
      ...this.#base(row),
      data,
    });
  }

  async remove(row: CopyRow): Promise<void> {
    this.rows.delete(row.localId);
    await this.outbox().record(this.pair, {
      kind: "delete",
      localId: row.localId,
      sourcekey: row.sourcekey,
      ...this.#base(row),
    });
  }

  async markRead(row: CopyRow, isRead: boolean): Promise<void> {
    setRead(row, isRead);
    await this.outbox().record(this.pair, {
      kind: "read",
      localId: row.localId,
      sourcekey: row.sourcekey,
      ...this.#base(row),
      isRead,
    });
  }

  async move(row: CopyRow, parentKey: string): Promise<void> {
    row.parentKey = parentKey;
    await this.outbox().record(this.pair, {
      kind: "move",
      localId: row.localId,
      sourcekey: row.sourcekey,
      ...this.#base(row),
      parentKey,
    });
  }
}

/** Sets a row's read flag, and a `read` boolean inside its data with it (as the pull keeps it). */
function setRead(row: CopyRow, isRead: boolean): void {
  row.read = isRead;
  const data = row.data as { read?: unknown } | null;
  if (data !== null && typeof data === "object" && typeof data.read === "boolean") {
    row.data = { ...data, read: isRead };
  }
}
