/**
 * The fallback for servers without `sync-collection` (PROTOCOLS.md §4.5): a cheap getctag check,
 * then an href → etag listing diffed against the one held in the state; changed members are
 * fetched with multiget, vanished ones are deletes.
 */
import type { Page, ResumePoint } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import { collectionInfo, hrefKey, hrefPath } from "./dav-discovery.js";
import { etagOf, itemDelete, multiget, toItem } from "./dav-fetch.js";
import { propChildren } from "./dav-multistatus.js";
import type { CollectionRef } from "./dav-sync-collection.js";
import { propfindBody } from "./dav-xml.js";
import type { CtagCursor, ItemCursor, ItemPage } from "./schemas.js";

export async function ctagPage(
  ref: CollectionRef,
  cursor: CtagCursor | undefined,
  signal: AbortSignal,
): Promise<Page<ItemCursor, ItemPage>> {
  const { t, href, kind, options } = ref;
  const info = await collectionInfo(t, href, signal, [
    "d:resourcetype",
    "cs:getctag",
    "d:sync-token",
  ]);
  const ctag = info?.ctag ?? info?.syncToken ?? null;
  if (cursor && cursor.g !== null && ctag !== null && cursor.g === ctag) return { changes: [] };

  const listing = await t.multistatus({
    method: "PROPFIND",
    href,
    depth: "1",
    body: propfindBody(["d:getetag", "d:resourcetype"]),
    signal,
  });
  const self = hrefKey(href, t.origin);
  const now: Record<string, string> = {};
  for (const r of listing.responses) {
    const path = hrefPath(r.href, t.origin);
    if (hrefKey(path, t.origin) === self || path.endsWith("/")) continue;
    if (propChildren(r, "resourcetype").includes("collection")) continue;
    if (r.props.size === 0) continue;
    now[path] = etagOf(r) ?? "";
  }
  const before = cursor?.e ?? {};
  const changed = Object.keys(now).filter((h) => before[h] !== now[h] || now[h] === "");
  const removed = Object.keys(before).filter((h) => !(h in now));
  const fetched = changed.length
    ? await multiget(t, href, kind, changed, options, signal)
    : undefined;

  const order = [...changed, ...removed];
  const changes: Change[] = order.map((h, i) => {
    const position = (): ResumePoint<ItemCursor> => {
      const e = { ...before };
      for (const p of order.slice(0, i + 1)) {
        if (p in now) e[p] = now[p] ?? "";
        else delete e[p];
      }
      // g: null makes the next round list again even if the ctag did not move.
      return { cursor: { m: "ctag", g: null, e } };
    };
    const got = fetched?.get(hrefKey(h, t.origin));
    if (!(h in now) || got === null || got === undefined) {
      return { ...itemDelete(h, href), position };
    }
    return {
      kind: "update",
      object: toItem(h, href, got.etag ?? now[h], got.raw, options),
      created: !(h in before),
      position,
    };
  });
  return { changes, newCursor: { m: "ctag", g: ctag, e: now } };
}
