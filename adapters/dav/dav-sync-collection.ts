/**
 * One page of a collection's changes through RFC 6578 `sync-collection` (sync-level 1).
 *
 * The report asks for the body too (`calendar-data` / `address-data`); members the server
 * answers without one (Xandikos) are fetched with multiget. A 507 on the request-URI (§3.6) ends
 * the page with `nextPage`, so the engine checkpoints the partial token and asks again.
 */
import { ProtocolError, StateInvalidError, TransientError } from "../../src/core/errors.js";
import type { Page, ResumePoint } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import { collectionInfo, type DavKind, hrefKey, hrefPath } from "./dav-discovery.js";
import { dataOf, dataProp, etagOf, type ItemOptions, multiget, toItem } from "./dav-fetch.js";
import type { MultiStatus } from "./dav-multistatus.js";
import type { DavTransport } from "./dav-transport.js";
import { syncCollectionBody } from "./dav-xml.js";
import type { ItemCursor, ItemPage, SyncCursor } from "./schemas.js";

export interface CollectionRef {
  t: DavTransport;
  /** Absolute path of the collection, with a trailing slash. */
  href: string;
  kind: DavKind;
  options: ItemOptions;
}

/** How the done-set marks an imported removal (etags are quoted strings, never this). */
const DELETED = "-";

export async function syncCollectionPage(
  ref: CollectionRef,
  cursor: SyncCursor | undefined,
  signal: AbortSignal,
): Promise<Page<ItemCursor, ItemPage>> {
  const { t, href, kind, options } = ref;
  const token = cursor?.t ?? "";
  const done = cursor?.d ?? {};
  const props = options.inline ? ["d:getetag", dataProp(kind)] : ["d:getetag"];
  const ms = await report(ref, token, props, signal);
  if (ms.syncToken === undefined) {
    throw new ProtocolError(`REPORT ${ms.url}`, "sync-collection answer has no <sync-token>");
  }
  const self = hrefKey(href, t.origin);
  let truncated = false;
  type Entry = { href: string; etag: string; raw?: string; removed: boolean };
  const entries: Entry[] = [];
  for (const r of ms.responses) {
    const key = hrefKey(r.href, t.origin);
    if (key === self) {
      // §3.6: a 507 on the request-URI marks truncation; iCloud also lists the collection itself.
      if (r.status === 507) truncated = true;
      continue;
    }
    const path = hrefPath(r.href, t.origin);
    if (path.endsWith("/")) continue; // a child collection: not an item (sync-level 1)
    if (r.status === 404) {
      if (done[path] !== DELETED) entries.push({ href: path, etag: "", removed: true });
      continue;
    }
    if (r.props.size === 0) continue; // e.g. a 403 member: nothing we may read
    const etag = etagOf(r) ?? "";
    // Without an etag a member can't be matched: it is imported again (a replay, never a skip).
    if (etag !== "" && done[path] === etag) continue;
    entries.push({ href: path, etag, raw: dataOf(r, kind), removed: false });
  }
  const missing = entries.filter((e) => !e.removed && e.raw === undefined).map((e) => e.href);
  const fetched = missing.length
    ? await multiget(t, href, kind, missing, options, signal)
    : undefined;

  const created = token === "";
  const changes: Change[] = [];
  entries.forEach((e, i) => {
    const position = (): ResumePoint<ItemCursor> => {
      const d: Record<string, string> = { ...done };
      for (const p of entries.slice(0, i + 1)) d[p.href] = p.removed ? DELETED : p.etag;
      return { cursor: { m: "sync", t: token, d } };
    };
    let raw = e.raw;
    let etag: string | undefined = e.etag || undefined;
    let removed = e.removed;
    if (!removed && raw === undefined) {
      const got = fetched?.get(hrefKey(e.href, t.origin));
      if (got === null || got === undefined) removed = true;
      else {
        raw = got.raw;
        etag = got.etag ?? etag;
      }
    }
    if (removed) {
      changes.push({
        kind: "delete",
        object: { sourcekey: e.href, type: "item", parentKey: href },
        soft: false,
        position,
      });
    } else {
      changes.push({
        kind: "update",
        object: toItem(e.href, href, etag, raw ?? "", options),
        created,
        position,
      });
    }
  });
  const newCursor: SyncCursor = { m: "sync", t: ms.syncToken };
  return truncated ? { changes, newCursor, nextPage: { t: ms.syncToken } } : { changes, newCursor };
}

/**
 * Sends the report. Xandikos answers an unknown token with a bare HTTP 500 (no
 * `valid-sync-token`); after the shared client's retries, a 500 on a request that carried a
 * token while the collection still answers a PROPFIND with a different token is taken as an
 * invalid token (`StateInvalidError`: the orchestrator resyncs). A 500 on an initial sync, or
 * when the probe fails too or shows the very same token, stays a `TransientError`.
 */
async function report(
  ref: CollectionRef,
  token: string,
  props: string[],
  signal: AbortSignal,
): Promise<MultiStatus & { url: string }> {
  try {
    return await ref.t.multistatus({
      method: "REPORT",
      href: ref.href,
      depth: "0",
      body: syncCollectionBody(token, props, ref.options.limit),
      signal,
    });
  } catch (error) {
    if (!(token && error instanceof TransientError && error.status === 500)) throw error;
    const current = await collectionInfo(ref.t, ref.href, signal, [
      "d:resourcetype",
      "d:sync-token",
    ]).then(
      (c) => c?.syncToken,
      () => {
        throw error;
      },
    );
    if (current === token) throw error;
    throw new StateInvalidError(
      `REPORT ${new URL(ref.href, ref.t.origin)}: HTTP 500 on every try with the saved sync ` +
        "token while the collection itself answers: the token is taken as invalid (a full sync is needed)",
      { cause: error },
    );
  }
}
