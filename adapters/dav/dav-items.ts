/**
 * The `ChangeSource` of one collection's items: RFC 6578 sync-collection where the collection
 * reports it, else the getctag + etag-diff fallback. The mode is chosen at the start of a full
 * sync and kept in the cursor, so a state never switches mode silently.
 */
import { ProtocolError } from "../../src/core/errors.js";
import type { ChangeSource, Page, ResumePoint } from "../../src/core/source.js";
import { ctagPage } from "./dav-ctag.js";
import type { DavCollection } from "./dav-discovery.js";
import type { ItemOptions } from "./dav-fetch.js";
import { type CollectionRef, syncCollectionPage } from "./dav-sync-collection.js";
import type { DavTransport } from "./dav-transport.js";
import { type ItemCursor, type ItemPage, itemCursorSchema, itemPageSchema } from "./schemas.js";

export type DavMode = "auto" | "sync-collection" | "ctag";

export interface ItemSourceOptions {
  /** Resolves the collection (its href, kind and supported reports). */
  resolve(signal: AbortSignal): Promise<DavCollection>;
  transport(): Promise<DavTransport>;
  options: ItemOptions;
  mode: DavMode;
}

export function itemSource(options: ItemSourceOptions): ChangeSource<ItemCursor, ItemPage> {
  return {
    async fetchPage(req) {
      const cursor = req.cursor;
      // A state names its collection: an incremental sync goes straight to the report.
      const collection: DavCollection =
        cursor?.h !== undefined && cursor.k !== undefined
          ? { href: cursor.h, kind: cursor.k, reports: [] }
          : await options.resolve(req.signal);
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
        return stamp(await syncCollectionPage(ref, cursor, req.signal), collection);
      }
      if (cursor && cursor.m !== "ctag") throw new ProtocolError(collection.href, "mode mismatch");
      return stamp(await ctagPage(ref, cursor, req.signal), collection);
    },
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
