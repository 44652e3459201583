/**
 * Turning journal entries into changes: one `ChangeSource` per scope over its journal.
 * Only the latest version of an object is exported; `base` (the cursor the round started from)
 * decides between create / move / update / read-only.
 */
import { z } from "zod";
import { StateInvalidError } from "../../src/core/errors.js";
import type { ChangeSource, Page } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { Journal } from "./memory-journal.js";
import type { FolderRecord, ItemRecord, UserRecord } from "./memory-records.js";

/**
 * Carried as the page token so every page of a round uses one base; `floor` is the compaction
 * floor when the round started.
 */
export interface MemoryPage {
  base: number;
  floor: number;
}

export interface JournalView {
  journal(): Journal;
  /** The server's current change number (covers every change recorded so far). */
  head(): number;
  /** The server's identity, written into states. */
  epoch(): string;
  /** Cursors below this were compacted away. */
  floor(): number;
  /** The change for one key, or undefined to skip it (a tombstone before anything was imported). */
  exportKey(key: string, ref: unknown, base: number, nothingImported: boolean): Change | undefined;
  pageSize: number;
  /** Let the engine request the next page while one is imported (see `ChangeSource.readAhead`). */
  readAhead?: boolean;
  name: string;
  /** Throws `NotFoundError` when the scope itself is gone (a deleted folder). */
  check?(): void;
}

export function journalSource(view: JournalView): ChangeSource<number, MemoryPage> {
  return {
    async fetchPage({ cursor, page, fullSync }): Promise<Page<number, MemoryPage>> {
      view.check?.();
      const floor = view.floor();
      // A full sync's mid-round cursor may sit below the floor: the tombstones dropped then
      // were of objects deleted before the round began, which it never exported.
      const compactedSinceStart = !fullSync || page === undefined || page.floor !== floor;
      if (cursor !== undefined && cursor < floor && compactedSinceStart) {
        throw new StateInvalidError(
          `memory ${view.name}: state cursor ${cursor} is older than the journal (compacted up to ${view.floor()})`,
        );
      }
      const head = view.head();
      if ((cursor ?? 0) > head || (page?.base ?? 0) > head) {
        // The server is older than the state: restored from a snapshot taken before it.
        throw new StateInvalidError(
          `memory ${view.name}: state cursor ${Math.max(cursor ?? 0, page?.base ?? 0)} is ahead of the server (at ${head})`,
        );
      }
      const from = cursor ?? 0;
      const base = page?.base ?? from;
      const token = { base, floor: page?.floor ?? floor };
      // Before anything was imported, tombstones concern nobody.
      const nothingImported = cursor === undefined;
      const changes: Change[] = [];
      let last = from;
      let more = false;
      for (const entry of view.journal().after(from)) {
        if (changes.length >= view.pageSize) {
          more = true;
          break;
        }
        last = entry.cn;
        const change = view.exportKey(entry.key, entry.ref, base, nothingImported);
        if (!change) continue;
        if (change.kind === "delete" && change.object.type === "folder") {
          changes.push(...movedAwayBefore(view, entry.cn, base, nothingImported));
        }
        change.position = { cursor: entry.cn, page: token };
        changes.push(change);
      }
      if (more) return { changes, newCursor: last, nextPage: token };
      return { changes, newCursor: Math.max(last, view.head()) };
    },
    readAhead: view.readAhead,
    identity: () => `memory:${view.epoch()}`,
    cursorSchema: z.number().int().nonnegative(),
    pageSchema: z
      .object({ base: z.number().int().nonnegative(), floor: z.number().int().nonnegative() })
      .strict(),
  };
}

/**
 * Folders that moved since `base` and whose latest change comes after a folder delete at `cn`.
 * The importer cascades that delete over the parents it knows; a folder that left the deleted
 * one before it was deleted must arrive at its new place first, or the cascade takes it along.
 * They carry no position: a round stopped among them resumes at the page (they repeat).
 */
function movedAwayBefore(
  view: JournalView,
  cn: number,
  base: number,
  nothingImported: boolean,
): Change[] {
  const out: Change[] = [];
  for (const later of view.journal().after(cn)) {
    const moved = ((later.ref as FolderRecord | undefined)?.movedCn ?? 0) > base;
    if (!moved) continue;
    const change = view.exportKey(later.key, later.ref, base, nothingImported);
    if (change && change.kind !== "delete") out.push(change);
  }
  return out;
}

/** An item as seen from a scope (`inScope` says whether it is still there). */
export function exportItem(
  item: ItemRecord | undefined,
  key: string,
  inScope: boolean,
  base: number,
  nothingImported: boolean,
  arrivedCn: number,
): Change | undefined {
  if (!item || !inScope) {
    if (nothingImported) return undefined;
    return {
      kind: "delete",
      object: { sourcekey: key, type: "item", parentKey: item?.parent },
      soft: item?.deleted?.soft ?? false,
    };
  }
  const object = {
    sourcekey: item.key,
    type: "item" as const,
    parentKey: item.parent,
    changeKey: String(item.contentCn),
    data: { fields: item.fields, read: item.read },
  };
  if (arrivedCn > base) return { kind: "update", object, created: true };
  const move = firstMoveAfter(item, base);
  if (move && move.from !== item.parent) return { kind: "move", object, fromParentKey: move.from };
  if (item.contentCn > base || move) return { kind: "update", object, created: false };
  return {
    kind: "read",
    object: { sourcekey: item.key, parentKey: item.parent },
    isRead: item.read,
  };
}

function firstMoveAfter(item: ItemRecord, base: number): ItemRecord["moves"][number] | undefined {
  const { moves } = item;
  if (moves.length === 0 || (moves[moves.length - 1] as { cn: number }).cn <= base)
    return undefined;
  return moves.find((m) => m.cn > base);
}

export function exportFolder(
  folder: FolderRecord | undefined,
  key: string,
  base: number,
  nothingImported: boolean,
): Change | undefined {
  if (!folder || folder.deleted) {
    if (nothingImported) return undefined;
    return {
      kind: "delete",
      object: { sourcekey: key, type: "folder", parentKey: folder?.parent },
      soft: folder?.deleted?.soft ?? false,
    };
  }
  return {
    kind: "update",
    object: {
      sourcekey: folder.key,
      type: "folder",
      parentKey: folder.parent,
      changeKey: String(folder.contentCn),
      data: { name: folder.name, kind: folder.kind },
    },
    created: folder.createdCn > base,
  };
}

export function exportUser(
  user: UserRecord | undefined,
  key: string,
  base: number,
  nothingImported: boolean,
): Change | undefined {
  if (!user || user.deleted) {
    if (nothingImported) return undefined;
    return { kind: "delete", object: { sourcekey: key, type: "user" }, soft: false };
  }
  return {
    kind: "update",
    object: {
      sourcekey: user.key,
      type: "user",
      changeKey: String(user.contentCn),
      data: { fields: user.fields },
    },
    created: user.createdCn > base,
  };
}
