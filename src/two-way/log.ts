/**
 * The outbox of one pair as a document: pending entries in push order, the last pushed seq, the
 * conflicts, and the recent pushes (for echo suppression). Every operation is a pure function
 * from one document to the next; the outbox saves the result with compare-and-set, so any
 * `StateStore` (memory, file, SQLite, PostgreSQL) holds outboxes with the same guarantees.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ArgumentError, StateError } from "../core/errors.js";
import type { SyncObject } from "../core/types.js";
import type { Conflict, LocalChange, OutboxEntry, WriteResult } from "./types.js";

/** Recent pushes remembered for echo suppression (oldest forgotten first). */
export const ECHO_LIMIT = 1000;

export interface Echo {
  sourcekey: string;
  changeKey?: string;
  /** Fingerprint of the object the write's answer carried, when it carried one. */
  fp?: string;
  /**
   * The local id of the copy's row holding this version. A pull may never report the object
   * (a server that diffs by content omits one created and deleted, or changed back, between two
   * sync tokens), so `settlePushed` checks every echo no pull has reported.
   */
  localId?: string;
  /** Documents written before `localId`: the local id, kept for created objects only. */
  created?: string;
}

/** The local id of the copy's row an echo belongs to (`created` in older documents). */
export const echoLocalId = (echo: Echo): string | undefined => echo.localId ?? echo.created;

export interface OutboxDoc {
  v: 1;
  /** The next entry's seq. */
  next: number;
  /** The seq of the last entry pushed (0: none yet). */
  cursor: number;
  entries: OutboxEntry[];
  conflicts: Conflict[];
  echoes: Echo[];
}

export const emptyDoc = (): OutboxDoc => ({
  v: 1,
  next: 1,
  cursor: 0,
  entries: [],
  conflicts: [],
  echoes: [],
});

const nonEmpty = z.string().min(1);
const base = {
  localId: nonEmpty,
  sourcekey: nonEmpty,
  changeKey: z.string().optional(),
};
const changeSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("create"),
    localId: nonEmpty,
    sourcekey: nonEmpty,
    parentKey: z.string().optional(),
    data: z.unknown(),
  }),
  z.object({
    kind: z.literal("update"),
    ...base,
    parentKey: z.string().optional(),
    data: z.unknown(),
  }),
  z.object({ kind: z.literal("delete"), ...base }),
  z.object({ kind: z.literal("move"), ...base, parentKey: nonEmpty }),
  z.object({ kind: z.literal("read"), ...base, isRead: z.boolean() }),
]);

const entrySchema = z.intersection(
  changeSchema,
  z.object({
    seq: z.number().int().positive(),
    at: z.number(),
    merged: z.literal(true).optional(),
    replaces: z.string().optional(),
  }),
);

const docSchema = z.object({
  v: z.literal(1),
  next: z.number().int().positive(),
  cursor: z.number().int().nonnegative(),
  entries: z.array(entrySchema),
  // Conflicts and echoes are written only by this module; their shape is checked loosely.
  conflicts: z.array(z.object({ id: z.string(), status: z.enum(["open", "resolved"]) }).loose()),
  echoes: z.array(z.object({ sourcekey: z.string() }).loose()),
});

/** Checks a change the app records; bad input is an `ArgumentError` naming the field. */
export function checkChange(change: LocalChange): LocalChange {
  const parsed = changeSchema.safeParse(change);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArgumentError(
      `outbox: invalid local change at ${issue?.path.join(".") || "(root)"}: ${issue?.message}`,
    );
  }
  return change;
}

/**
 * Parses a pair's document; `trusted` skips the schema check for text this process wrote or
 * checked itself (the check is the cost that grows with the outbox).
 */
export function parseDoc(key: string, text: string | undefined, trusted = false): OutboxDoc {
  if (text === undefined) return emptyDoc();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StateError(`outbox ${key} is corrupt: not JSON`);
  }
  return trusted ? (json as OutboxDoc) : checkDoc(key, json);
}

/** Checks a parsed document's shape; a wrong one is a `StateError` naming the pair's key. */
export function checkDoc(key: string, json: unknown): OutboxDoc {
  const parsed = docSchema.safeParse(json);
  if (!parsed.success) throw new StateError(`outbox ${key} is corrupt: ${parsed.error.message}`);
  return json as OutboxDoc;
}

export const serializeDoc = (doc: OutboxDoc): string => JSON.stringify(doc);

/**
 * Appends a change, coalescing it with the object's earlier pending entries: updates fold into a
 * pending create or update (keeping its base and place), read flags and moves into the previous
 * one, a delete of a pending create cancels both. The head entry is never changed: a pusher may
 * be writing it right now. Returns the new entry (or the one it was folded into), or undefined
 * when the change cancelled out. Entries are values: a changed entry is a new object in the
 * list (the row outboxes find what to write by identity).
 */
export function record(doc: OutboxDoc, change: LocalChange, now: number): OutboxEntry | undefined {
  const head = doc.entries[0];
  const mine = doc.entries.filter((e) => e.localId === change.localId && e !== head);
  const last = mine.at(-1);
  const fold = (next: OutboxEntry): OutboxEntry => {
    doc.entries[doc.entries.lastIndexOf(last as OutboxEntry)] = next;
    return next;
  };
  switch (change.kind) {
    case "update":
      if (last?.kind === "create" || last?.kind === "update") {
        return fold({
          ...last,
          data: change.data,
          ...(change.parentKey !== undefined ? { parentKey: change.parentKey } : {}),
          at: now,
        });
      }
      break;
    case "read":
      if (last?.kind === "read") return fold({ ...last, isRead: change.isRead, at: now });
      break;
    case "move":
      if (last?.kind === "move" || last?.kind === "create") {
        return fold({ ...last, parentKey: change.parentKey, at: now });
      }
      break;
    case "delete": {
      if (mine.length > 0) {
        doc.entries = doc.entries.filter((e) => !mine.includes(e));
        // Created and deleted before any push: nothing ever reaches the server.
        if (mine.some((e) => e.kind === "create")) return undefined;
        const first = mine[0] as OutboxEntry;
        return append(
          doc,
          {
            kind: "delete",
            localId: change.localId,
            sourcekey: first.sourcekey,
            changeKey: first.kind === "create" ? undefined : first.changeKey,
          },
          now,
        );
      }
      break;
    }
    case "create":
      if (doc.entries.some((e) => e.localId === change.localId)) {
        throw new ArgumentError(`outbox: ${change.localId} already has pending changes`);
      }
      break;
  }
  return append(doc, change, now);
}

function append(doc: OutboxDoc, change: LocalChange, now: number): OutboxEntry {
  const entry = { ...change, seq: doc.next++, at: now } as OutboxEntry;
  if (entry.kind !== "create" && entry.changeKey === undefined) delete entry.changeKey;
  doc.entries.push(entry);
  return entry;
}

/**
 * Marks the head entry `seq` pushed: advances the cursor, removes it, and rebases the object's
 * later entries on the version the write produced (they were recorded on the version before it).
 * False when `seq` is not the head any more (another pusher completed it).
 */
export function complete(
  doc: OutboxDoc,
  seq: number,
  result: WriteResult | null,
  options: { byChangeKey?: boolean } = {},
): boolean {
  const head = doc.entries[0];
  if (!head || head.seq !== seq) return false;
  doc.entries.shift();
  doc.cursor = seq;
  // The object left its old key: what we remembered of it there is history.
  if (head.replaces !== undefined) forgetEcho(doc, head.replaces);
  if (result) {
    // Rebased entries are new objects (entries are values, see `record`).
    doc.entries.forEach((e, i) => {
      if (e.localId !== head.localId) return;
      const next = { ...e, sourcekey: result.sourcekey };
      if (next.kind !== "create") {
        if (result.changeKey !== undefined) next.changeKey = result.changeKey;
        else delete next.changeKey;
      }
      doc.entries[i] = next;
    });
    // A write that gave the object a new key (IMAP's MOVE) leaves the old key behind: forget
    // its echo. The new key's echo, like every echo, is checked by settlePushed if no pull
    // reports it (a server may never report an object that appeared and vanished between two
    // syncs).
    if (result.sourcekey !== head.sourcekey) forgetEcho(doc, head.sourcekey);
    const localId = head.localId;
    if (head.merged) {
      // The app's copy lacks the merged data: let the pull deliver it (no version to match).
      remember(doc, { sourcekey: result.sourcekey, localId });
      return true;
    }
    remember(doc, {
      sourcekey: result.sourcekey,
      changeKey: result.changeKey,
      // By changeKey alone when asked (a version `fetch` found on a backend whose changeKey
      // covers everything): a GET and the pull may serialise one version differently.
      fp: result.object && !options.byChangeKey ? fingerprint(result.object) : undefined,
      localId,
    });
  }
  return true;
}

/**
 * The pusher handed `obj` to the app's copy (`onRemote`: a conflict resolved for the server, a
 * delete that left the object elsewhere), so the copy holds a version no pull delivered. It is
 * remembered like an echo: a pull reporting that version does not deliver it again, and
 * `settlePushed` checks it if no pull reports the object (a server that diffs by content says
 * nothing when the object changes back to the version the pull saw last: Xandikos).
 */
export function delivered(
  doc: OutboxDoc,
  localId: string,
  obj: SyncObject,
  options: { byChangeKey?: boolean } = {},
): void {
  remember(doc, {
    sourcekey: obj.sourcekey,
    changeKey: obj.changeKey,
    fp: options.byChangeKey ? undefined : fingerprint(obj),
    localId,
  });
}

/** True when `obj` (as `fetch` found it) is the version `echo` remembers. */
export function echoMatches(echo: Echo, obj: SyncObject): boolean {
  if (echo.changeKey === undefined || echo.changeKey !== obj.changeKey) return false;
  return echo.fp === undefined || echo.fp === fingerprint(obj);
}

function remember(doc: OutboxDoc, echo: Echo): void {
  doc.echoes = doc.echoes.filter((e) => e.sourcekey !== echo.sourcekey);
  const clean: Echo = { sourcekey: echo.sourcekey };
  if (echo.changeKey !== undefined) clean.changeKey = echo.changeKey;
  if (echo.fp !== undefined) clean.fp = echo.fp;
  if (echo.localId !== undefined) clean.localId = echo.localId;
  doc.echoes.push(clean);
  if (doc.echoes.length > ECHO_LIMIT) doc.echoes.splice(0, doc.echoes.length - ECHO_LIMIT);
}

/**
 * True when `obj` is the version one of our own writes produced (same changeKey, and the same
 * contents when the write's answer carried them): the pull side must not treat it as a remote edit.
 */
export function isEcho(doc: OutboxDoc, obj: SyncObject): boolean {
  const echo = doc.echoes.find((e) => e.sourcekey === obj.sourcekey);
  return echo !== undefined && echoMatches(echo, obj);
}

/** True when an echo of `sourcekey` is remembered. */
export const hasEcho = (doc: OutboxDoc, sourcekey: string): boolean =>
  doc.echoes.some((e) => e.sourcekey === sourcekey);

/**
 * Gives the pending entries of the local object `from` to `to` (two rows of the copy turned out
 * to be one object). New entry objects, as every change here: the row outboxes save what changed
 * by identity.
 */
export function reassign(doc: OutboxDoc, from: string, to: string): void {
  doc.entries = doc.entries.map((e) => (e.localId === from ? { ...e, localId: to } : e));
  doc.echoes = doc.echoes.map((e) => {
    if (echoLocalId(e) !== from) return e;
    const { created: _older, ...rest } = e;
    return { ...rest, localId: to };
  });
}

/** Forgets the echo of `sourcekey`: the pull has seen the object since our write. */
export function forgetEcho(doc: OutboxDoc, sourcekey: string): void {
  doc.echoes = doc.echoes.filter((e) => e.sourcekey !== sourcekey);
}

/** True when the app has changes of `sourcekey` not yet pushed. */
export const hasPending = (doc: OutboxDoc, sourcekey: string): boolean =>
  doc.entries.some((e) => e.sourcekey === sourcekey || e.replaces === sourcekey);

/** Every sourcekey with pending local changes (a re-create's old key included). */
export function pendingKeys(doc: OutboxDoc): Set<string> {
  const keys = new Set<string>();
  for (const e of doc.entries) {
    keys.add(e.sourcekey);
    if (e.replaces !== undefined) keys.add(e.replaces);
  }
  return keys;
}

/** The open conflict pausing the pair, if any. */
export const openConflict = (doc: OutboxDoc): Conflict | undefined =>
  doc.conflicts.find((c) => c.status === "open");

/** Replaces the head entry (a resolution rewrote it); false when `seq` is not the head. */
export function rewriteHead(doc: OutboxDoc, seq: number, next: OutboxEntry): boolean {
  if (doc.entries[0]?.seq !== seq) return false;
  doc.entries[0] = next;
  return true;
}

/** Removes the head and every later entry of its object; returns them. */
export function dropObject(doc: OutboxDoc, seq: number): OutboxEntry[] | undefined {
  const head = doc.entries[0];
  if (!head || head.seq !== seq) return undefined;
  const dropped = doc.entries.filter((e) => e.localId === head.localId);
  doc.entries = doc.entries.filter((e) => e.localId !== head.localId);
  doc.cursor = seq;
  return dropped;
}

/** A stable fingerprint of an object's version and contents. */
export function fingerprint(obj: SyncObject): string {
  // A digest, not the text: echoes stay small in the pair's document.
  return createHash("sha256")
    .update(stableJson([obj.changeKey ?? null, obj.parentKey ?? null, obj.data ?? null]))
    .digest("base64url")
    .slice(0, 22);
}

/** JSON with sorted object keys, so equal values give equal text. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0,
          ),
        )
      : v,
  );
}
