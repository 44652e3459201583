/**
 * A mirror built only from importer calls: what a correct importer ends up holding.
 */
import { isDeepStrictEqual } from "node:util";
import type { Importer, SyncObject } from "../core/types.js";
import type { ConformanceScope, MirrorEntry } from "./harness.js";

export type Mirror = Map<string, MirrorEntry>;

/** Full-sync generations of a mirror: the one in progress, and the last one each key was seen in. */
interface Generations {
  current: number;
  seen: Map<string, number>;
}
const generations = new WeakMap<Mirror, Generations>();

function generationsOf(mirror: Mirror): Generations {
  let g = generations.get(mirror);
  if (!g) {
    g = { current: 0, seen: new Map() };
    generations.set(mirror, g);
  }
  return g;
}

/**
 * An importer that keeps `mirror` up to date: upsert on update/move, delete (cascading to the
 * subtree of a folder) on delete, flag on read, and a sweep of what a full sync did not send
 * (by generation, so the mirror stays whole while a full sync runs and survives crashes in it).
 * With `withMoved` it opts into `moved` events.
 */
export function mirrorImporter(
  mirror: Mirror,
  scope: Pick<ConformanceScope, "project" | "readOf">,
  withMoved = false,
): Importer {
  const g = generationsOf(mirror);
  const upsert = (obj: SyncObject) => {
    g.seen.set(obj.sourcekey, g.current);
    const entry: MirrorEntry = {
      type: obj.type,
      parentKey: obj.parentKey,
      data: scope.project ? scope.project(obj) : obj.data,
    };
    const read = scope.readOf?.(obj);
    if (read !== undefined) entry.read = read;
    mirror.set(obj.sourcekey, entry);
  };
  const importer: Importer = {
    update: (obj) => upsert(obj),
    delete: (obj) => {
      mirror.delete(obj.sourcekey);
      if (obj.type === "folder") cascade(mirror, obj.sourcekey);
    },
    read: (obj, isRead) => {
      const entry = mirror.get(obj.sourcekey);
      if (entry) entry.read = isRead;
    },
    // What an application does before a forced resync: start over from an empty copy.
    reset: () => {
      mirror.clear();
    },
    beginFullSync: () => {
      g.current++;
    },
    endFullSync: () => {
      for (const key of [...mirror.keys()]) {
        if ((g.seen.get(key) ?? -1) < g.current) mirror.delete(key);
      }
    },
  };
  if (withMoved) importer.moved = (obj) => upsert(obj);
  return importer;
}

/** Removes everything below a deleted folder. */
function cascade(mirror: Mirror, folderKey: string): void {
  const doomed = [folderKey];
  while (doomed.length) {
    const parent = doomed.pop();
    for (const [key, entry] of mirror) {
      if (entry.parentKey === parent) {
        mirror.delete(key);
        if (entry.type === "folder") doomed.push(key);
      }
    }
  }
}

/** Describes how `mirror` differs from `truth` (at most `limit` lines), or undefined if equal. */
export function diffMirror(
  mirror: Mirror,
  truth: Map<string, MirrorEntry>,
  limit = 8,
): string | undefined {
  const lines: string[] = [];
  const show = (v: unknown) => JSON.stringify(v)?.slice(0, 200);
  for (const [key, want] of truth) {
    const got = mirror.get(key);
    if (!got) lines.push(`missing ${want.type} ${key}: ${show(want)}`);
    else if (
      got.type !== want.type ||
      (want.parentKey !== undefined && got.parentKey !== want.parentKey) ||
      !isDeepStrictEqual(got.data, want.data) ||
      (want.read !== undefined && got.read !== want.read)
    ) {
      lines.push(`stale ${want.type} ${key}: mirror ${show(got)}, truth ${show(want)}`);
    }
  }
  for (const [key, got] of mirror) {
    if (!truth.has(key)) lines.push(`extra ${got.type} ${key}: ${show(got)}`);
  }
  if (lines.length === 0) return undefined;
  const more = lines.length > limit ? `\n… and ${lines.length - limit} more` : "";
  return lines.slice(0, limit).join("\n") + more;
}
