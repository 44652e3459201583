/**
 * What the SQLite and PostgreSQL mirrors share, whatever their SQL: the row shape, the read flag
 * taken from an object's data, the time-ordered local id, and one batch's writes in order.
 */
import { randomBytes } from "node:crypto";
import type { SyncObject } from "../core/types.js";
import type { DeletedRecord, ReadChange } from "./batch.js";

/** One mirrored object. */
export interface MirrorRow {
  source: string;
  sourcekey: string;
  /** Stable local id, kept across updates (use it as your foreign key). */
  id: string;
  type: string;
  parentKey: string | null;
  changeKey: string | null;
  data: unknown;
  isRead: boolean | null;
  /** ISO time the row was first created here. */
  createdLocally: string;
  /** ISO time the row was last changed here. */
  updatedLocally: string;
  /** The source that made the last change (this mirror's `source` for synced changes). */
  updatedAtSource: string;
}

/** The default `readOf`: `data.read` when it is a boolean. */
export function defaultReadOf(obj: SyncObject): boolean | undefined {
  const r = (obj.data as { read?: unknown } | null)?.read;
  return typeof r === "boolean" ? r : undefined;
}

/** One write of a batch, in delivery order (the full-sync brackets and a reset included). */
export type MirrorOp =
  | { kind: "begin" }
  | { kind: "end" }
  | { kind: "reset" }
  | { kind: "updated"; records: SyncObject[] }
  | { kind: "deleted"; keys: string[]; objects: DeletedRecord[] | undefined }
  | { kind: "read"; changes: ReadChange[] };

/** The last entry per key, in first-seen order (one multi-row statement may touch a row once). */
export function lastPerKey<T>(entries: readonly T[], keyOf: (e: T) => string): T[] {
  const byKey = new Map<string, T>();
  for (const e of entries) {
    const k = keyOf(e);
    byKey.delete(k);
    byKey.set(k, e);
  }
  return [...byKey.values()];
}

let lastMs = 0;
let counter = 0;

/**
 * A UUIDv7-style id (RFC 9562 §5.7): time-ordered, so inserting millions of rows appends to the
 * `id` index instead of scattering random writes over it.
 */
export function timeOrderedId(): string {
  const now = Date.now();
  counter = now === lastMs ? (counter + 1) & 0xfff : 0;
  lastMs = now;
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | ((b[8] as number) & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
