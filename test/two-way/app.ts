/**
 * A small app for two-way tests: its own copy of a scope (rows by local id), local edits that
 * go through the outbox, a pull importer wrapped with `twoWayImporter`, and the pusher's
 * write-back callbacks.
 */
import type { Importer, SyncObject } from "../../src/core/types.js";
import { twoWayImporter } from "../../src/two-way/importer.js";
import type { Outbox } from "../../src/two-way/outbox.js";
import type { PushOptions } from "../../src/two-way/push.js";
import type { WriteTarget } from "../../src/two-way/types.js";

export interface Row {
  localId: string;
  sourcekey: string;
  changeKey?: string;
  parentKey?: string;
  fields: Record<string, unknown>;
  read: boolean;
}

interface ItemData {
  fields: Record<string, unknown>;
  read: boolean;
}

export class App {
  readonly rows = new Map<string, Row>();
  #n = 0;
  constructor(
    readonly outbox: Outbox,
    readonly pair: string,
    readonly target: WriteTarget,
  ) {}

  byKey(sourcekey: string): Row | undefined {
    for (const r of this.rows.values()) if (r.sourcekey === sourcekey) return r;
    return undefined;
  }

  #put(obj: SyncObject): void {
    const data = obj.data as ItemData;
    const row = this.byKey(obj.sourcekey);
    const next: Row = {
      localId: row?.localId ?? `r${++this.#n}`,
      sourcekey: obj.sourcekey,
      changeKey: obj.changeKey,
      parentKey: obj.parentKey,
      fields: { ...data.fields },
      read: data.read,
    };
    this.rows.set(next.localId, next);
  }

  /** The pull importer (only what the outbox allows through reaches the rows). */
  get importer(): Importer {
    const inner: Importer = {
      update: (obj) => this.#put(obj),
      moved: (obj) => this.#put(obj),
      delete: (obj) => {
        const row = this.byKey(obj.sourcekey);
        if (row) this.rows.delete(row.localId);
      },
      read: (obj, isRead) => {
        const row = this.byKey(obj.sourcekey);
        if (row) row.read = isRead;
      },
    };
    return twoWayImporter(inner, this.outbox, this.pair);
  }

  /** The pusher's write-back callbacks. */
  get callbacks(): Pick<PushOptions, "onPushed" | "onRemote"> {
    return {
      onPushed: (entry, result, { last }) => {
        const row = this.rows.get(entry.localId);
        if (!row || !result) return;
        row.sourcekey = result.sourcekey;
        row.changeKey = result.changeKey;
        if (last && result.object) {
          const data = result.object.data as ItemData;
          Object.assign(row, {
            parentKey: result.object.parentKey,
            fields: { ...data.fields },
            read: data.read,
          });
        }
      },
      onRemote: (entry, remote) => {
        if (!remote) this.rows.delete(entry.localId);
        else {
          const data = remote.data as ItemData;
          this.rows.set(entry.localId, {
            localId: entry.localId,
            sourcekey: remote.sourcekey,
            changeKey: remote.changeKey,
            parentKey: remote.parentKey,
            fields: { ...data.fields },
            read: data.read,
          });
        }
      },
    };
  }

  async create(parentKey: string, fields: Record<string, unknown>): Promise<string> {
    const localId = `l${++this.#n}`;
    const sourcekey = this.target.keyFor(localId);
    this.rows.set(localId, { localId, sourcekey, parentKey, fields, read: false });
    await this.outbox.record(this.pair, {
      kind: "create",
      localId,
      sourcekey,
      parentKey,
      data: { fields },
    });
    return localId;
  }

  async update(localId: string, fields: Record<string, unknown>): Promise<void> {
    const row = this.rows.get(localId) as Row;
    row.fields = fields;
    await this.outbox.record(this.pair, {
      kind: "update",
      localId,
      sourcekey: row.sourcekey,
      changeKey: row.changeKey,
      data: { fields },
    });
  }

  async remove(localId: string): Promise<void> {
    const row = this.rows.get(localId) as Row;
    this.rows.delete(localId);
    await this.outbox.record(this.pair, {
      kind: "delete",
      localId,
      sourcekey: row.sourcekey,
      changeKey: row.changeKey,
    });
  }

  async markRead(localId: string, isRead: boolean): Promise<void> {
    const row = this.rows.get(localId) as Row;
    row.read = isRead;
    await this.outbox.record(this.pair, {
      kind: "read",
      localId,
      sourcekey: row.sourcekey,
      changeKey: row.changeKey,
      isRead,
    });
  }

  async move(localId: string, parentKey: string): Promise<void> {
    const row = this.rows.get(localId) as Row;
    row.parentKey = parentKey;
    await this.outbox.record(this.pair, {
      kind: "move",
      localId,
      sourcekey: row.sourcekey,
      changeKey: row.changeKey,
      parentKey,
    });
  }

  /** Rows as `sourcekey → { parentKey, fields, read }`, sorted, for comparing with the server. */
  snapshot(): Record<string, { parentKey?: string; fields: unknown; read: boolean }> {
    const out: Record<string, { parentKey?: string; fields: unknown; read: boolean }> = {};
    for (const r of [...this.rows.values()].sort((a, b) => (a.sourcekey < b.sourcekey ? -1 : 1))) {
      out[r.sourcekey] = { parentKey: r.parentKey, fields: r.fields, read: r.read };
    }
    return out;
  }
}
