/**
 * The composite source: server-wide (or hierarchy-wide) sync for backends that only have a
 * cursor per folder. Its cursor maps each child key to that child's own cursor; its page token
 * lists the children still to visit this round and the child's own page token.
 */
import { z } from "zod";
import { NotFoundError, ProtocolError, StateInvalidError } from "./errors.js";
import type { ChangeSource, Page, PageRequest, ResumePoint } from "./source.js";
import type { Change } from "./types.js";

export type CompositeCursor = Record<string, unknown>;
export interface CompositePage {
  /** Children still to visit this round, the current one first. */
  todo: string[];
  /** The current child's page token. */
  cp?: unknown;
}

export interface CompositeOptions {
  /** Names the composite in errors, e.g. `imap server`. */
  name: string;
  /** The keys of the children that exist now (e.g. every selectable mailbox). */
  listChildren(signal: AbortSignal): Promise<string[]>;
  /** The change source of one child. */
  child(key: string): ChangeSource;
  /** How a vanished (or reset) child is reported; default: a hard delete of the folder `key`. */
  vanished?(key: string): Change;
}

const defaultVanished = (key: string): Change => ({
  kind: "delete",
  object: { sourcekey: key, type: "folder" },
  soft: false,
});

/**
 * Builds a `ChangeSource` over many children. A child that disappears is reported with
 * `vanished` (a folder delete, which importers cascade); a child whose own cursor became invalid
 * is reported the same way and then fully re-synced, so one bad folder never resets the others.
 */
export function compositeSource(
  options: CompositeOptions,
): ChangeSource<CompositeCursor, CompositePage> {
  const vanished = options.vanished ?? defaultVanished;

  async function startRound(
    req: PageRequest<CompositeCursor, CompositePage>,
  ): Promise<Page<CompositeCursor, CompositePage>> {
    const cursor = req.cursor ?? {};
    const keys = [...new Set(await options.listChildren(req.signal))].sort();
    const present = new Set(keys);
    const gone = Object.keys(cursor).filter((k) => !present.has(k));
    const next = { ...cursor };
    for (const k of gone) delete next[k];
    return {
      changes: gone.map(vanished),
      newCursor: next,
      nextPage: keys.length ? { todo: keys } : undefined,
    };
  }

  async function childPage(
    req: PageRequest<CompositeCursor, CompositePage>,
    page: CompositePage,
  ): Promise<Page<CompositeCursor, CompositePage>> {
    const cursor = req.cursor ?? {};
    const [key, ...rest] = page.todo;
    if (key === undefined) throw new ProtocolError(options.name, "empty composite page");
    const childCursor = cursor[key];
    let result: Page;
    try {
      result = await options.child(key).fetchPage({
        cursor: childCursor,
        page: page.cp,
        fullSync: childCursor === undefined,
        window: req.window,
        signal: req.signal,
      });
    } catch (error) {
      const reset = error instanceof StateInvalidError && childCursor !== undefined;
      if (!reset && !(error instanceof NotFoundError)) throw error;
      // Drop this child's copy; a reset child is then fully re-synced, a missing one skipped.
      const next = { ...cursor };
      delete next[key];
      const todo = reset ? page.todo : rest;
      return {
        changes: [vanished(key)],
        newCursor: next,
        nextPage: todo.length ? { todo } : undefined,
      };
    }
    const newCursor =
      result.newCursor === undefined ? cursor : { ...cursor, [key]: result.newCursor };
    if (result.nextPage === undefined && newCursor[key] === undefined) {
      throw new ProtocolError(
        `${options.name} ${key}`,
        "the last page of a full sync carried no cursor",
      );
    }
    const nextPage: CompositePage | undefined =
      result.nextPage !== undefined
        ? { todo: page.todo, cp: result.nextPage }
        : rest.length
          ? { todo: rest }
          : undefined;
    const changes = result.changes.map((change) =>
      withCompositePosition(change, cursor, key, page.todo),
    );
    return { changes, newCursor, nextPage };
  }

  /**
   * Delivered objects the resumed page lacks. The page's child answers first; but the marks of a
   * batch (`runSync`'s `pendingState`) cover every page the batch crossed, later children's
   * too, and a child reports a key it does not hold as deleted: each key it calls gone is asked
   * of the round's later children in turn, and the first one that holds it answers.
   */
  async function verify(
    keys: string[],
    req: PageRequest<CompositeCursor, CompositePage>,
  ): Promise<Change[]> {
    const [key, ...later] = req.page?.todo ?? [];
    if (key === undefined) {
      // The round's first page lists vanished children; one of them is back: only a full
      // resync rebuilds what the importer cascaded away.
      throw new StateInvalidError(
        `${options.name}: the resumed page no longer lists ${keys.length} delivered object(s)`,
      );
    }
    const answers = byKey(await verifyIn(key, keys, req, req.page?.cp));
    for (const other of later) {
      const gone = keys.filter((k) => (answers.get(k) ?? []).every((c) => c.kind === "delete"));
      if (gone.length === 0) break;
      for (const [k, changes] of byKey(await verifyIn(other, gone, req, undefined))) {
        if (changes.some((c) => c.kind !== "delete")) answers.set(k, changes);
      }
    }
    return [...answers.values()].flat();
  }

  /** `keys` verified by the child `key` (from its page `cp`, if it is the resumed one). */
  async function verifyIn(
    key: string,
    keys: string[],
    req: PageRequest<CompositeCursor, CompositePage>,
    cp: unknown,
  ): Promise<Change[]> {
    const child = options.child(key);
    if (!child.verify) {
      // Only a full resync can tell what became of them.
      throw new StateInvalidError(
        `${options.name}: ${keys.length} delivered object(s) to verify, which ${key} cannot`,
      );
    }
    const childCursor = req.cursor?.[key];
    try {
      return await child.verify(keys, {
        cursor: childCursor,
        page: cp,
        fullSync: childCursor === undefined,
        window: req.window,
        signal: req.signal,
      });
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      // The child itself is gone: so is everything it held (its page reports the folder delete).
      return keys.map((sourcekey) => ({
        kind: "delete" as const,
        object: { sourcekey, type: "item" as const, parentKey: key },
        soft: false,
      }));
    }
  }

  return {
    fetchPage: (req) => (req.page === undefined ? startRound(req) : childPage(req, req.page)),
    verify,
    cursorSchema: z.record(z.string(), z.unknown()),
    pageSchema: z.object({ todo: z.array(z.string()).min(1), cp: z.unknown().optional() }).strict(),
  };
}

function withCompositePosition(
  change: Change,
  cursor: CompositeCursor,
  key: string,
  todo: string[],
): Change {
  const { position } = change;
  if (position === undefined) return change;
  return {
    ...change,
    position: (): ResumePoint => {
      const p = (typeof position === "function" ? position() : position) as ResumePoint;
      return {
        cursor: p.cursor === undefined ? cursor : { ...cursor, [key]: p.cursor },
        page: { todo, cp: p.page },
      };
    },
  };
}

/** Changes grouped by sourcekey, in order. */
function byKey(changes: Change[]): Map<string, Change[]> {
  const out = new Map<string, Change[]>();
  for (const change of changes) {
    const key = change.object.sourcekey;
    const list = out.get(key);
    if (list) list.push(change);
    else out.set(key, [change]);
  }
  return out;
}
