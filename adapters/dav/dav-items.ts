/**
 * The `ChangeSource` of one collection's items: RFC 6578 sync-collection where the collection
 * reports it, else the getctag + etag-diff fallback. The mode is chosen at the start of a full
 * sync and kept in the cursor, so a state never switches mode silently.
 */
import { ProtocolError, StateError } from "../../src/core/errors.js";
import type { ChangeSource, Page, PageRequest, ResumePoint } from "../../src/core/source.js";
import { ctagPage } from "./dav-ctag.js";
import type { DavCollection } from "./dav-discovery.js";
import { type ItemOptions, verifyItems } from "./dav-fetch.js";
import { type CollectionRef, syncCollectionPage } from "./dav-sync-collection.js";
import type { DavTransport } from "./dav-transport.js";
import { type ItemCursor, type ItemPage, itemCursorSchema, itemPageSchema } from "./schemas.js";

export type DavMode = "auto" | "sync-collection" | "ctag";

export interface ItemSourceOptions {
  /** What the scope names, as `identity()` answers it (no request). */
  identity(origin: string): string;
  /** True when a cursor's collection href is the one the scope names (no request). */
  owns(href: string, origin: string): boolean;
  /** Resolves the collection (its href, kind and supported reports). */
  resolve(signal: AbortSignal): Promise<DavCollection>;
  transport(): Promise<DavTransport>;
  options: ItemOptions;
  mode: DavMode;
}

export function itemSource(options: ItemSourceOptions): ChangeSource<ItemCursor, ItemPage> {
  /**
   * The collection a request reads: the one the cursor names (no lookup on incremental syncs),
   * which must be the scope's own; a state whose cursor names another collection would import
   * that collection's items into this scope.
   */
  const collectionOf = async (req: PageRequest<ItemCursor, ItemPage>): Promise<DavCollection> => {
    const { cursor, signal } = req;
    if (cursor?.h === undefined || cursor.k === undefined) return options.resolve(signal);
    const t = await options.transport();
    if (!options.owns(cursor.h, t.origin)) {
      throw new StateError(
        `state is for the DAV collection ${cursor.h.slice(0, 200)}, ` +
          `not ${options.identity(t.origin).slice(0, 200)}`,
      );
    }
    return { href: cursor.h, kind: cursor.k, reports: [] };
  };

  return {
    async fetchPage(req) {
      const { cursor } = req;
      const collection = await collectionOf(req);
      const ref: CollectionRef = {
        t: await options.transport(),
        href: collection.href,
        kind: collection.kind,
        options: options.options,
      };
      const mode = cursor?.m ?? pickMode(options.mode, collection);
      if (mode === "sync") {
        if (cursor && cursor.m !== "sync")
          throw new ProtocolError(collection.href, "mode mismatch");
        return stamp(await syncCollectionPage(ref, cursor, req.fullSync, req.signal), collection);
      }
      if (cursor && cursor.m !== "ctag") throw new ProtocolError(collection.href, "mode mismatch");
      return stamp(await ctagPage(ref, cursor, req.signal), collection);
    },
    // Members a resumed answer no longer names (the engine's delivered set): multiget them.
    async verify(keys, req) {
      const collection = await collectionOf(req);
      const t = await options.transport();
      return verifyItems(t, collection.href, collection.kind, keys, options.options, req.signal);
    },
    async identity() {
      return options.identity((await options.transport()).origin);
    },
    // RFC 6578 leaves it open whether a change undone since the token is reported (Xandikos
    // diffs trees: it is not), and the ctag mode diffs etags: mark pages before delivery.
    reportsByContent: true,
    cursorSchema: itemCursorSchema,
    pageSchema: itemPageSchema,
  };
}

/** Writes the collection's href and kind into every cursor the page hands out. */
function stamp(page: Page<ItemCursor, ItemPage>, c: DavCollection): Page<ItemCursor, ItemPage> {
  const at = (cursor: ItemCursor): ItemCursor => ({ ...cursor, h: c.href, k: c.kind });
  const changes = page.changes.map((change) => {
    const { position } = change;
    if (typeof position !== "function") return change;
    return {
      ...change,
      position: () => {
        const p = (position as () => ResumePoint<ItemCursor>)();
        return p.cursor ? { ...p, cursor: at(p.cursor) } : p;
      },
    };
  });
  return page.newCursor
    ? { ...page, changes, newCursor: at(page.newCursor) }
    : { ...page, changes };
}

function pickMode(mode: DavMode, collection: DavCollection): "sync" | "ctag" {
  if (mode === "sync-collection") return "sync";
  if (mode === "ctag") return "ctag";
  return collection.reports.includes("sync-collection") ? "sync" : "ctag";
}
