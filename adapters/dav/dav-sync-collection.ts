/**
 * One page of a collection's changes through RFC 6578 `sync-collection` (sync-level 1).
 *
 * The report asks for the body too (`calendar-data` / `address-data`); members the server
 * answers without one (Xandikos) are fetched with multiget. A 507 on the request-URI (§3.6) ends
 * the page with `nextPage`, so the engine checkpoints the partial token and asks again.
 */
import { ProtocolError, StateInvalidError, TransientError } from "../../src/core/errors.js";
import type { Page } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import { collectionInfo, type DavKind, hrefKey, hrefPath } from "./dav-discovery.js";
import {
  dataOf,
  dataProp,
  etagOf,
  type ItemOptions,
  itemDelete,
  multiget,
  toItem,
} from "./dav-fetch.js";
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

export async function syncCollectionPage(
  ref: CollectionRef,
  cursor: SyncCursor | undefined,
  fullSync: boolean,
  signal: AbortSignal,
): Promise<Page<ItemCursor, ItemPage>> {
  const { t, href, kind, options } = ref;
  // A resume inside a round asks with the same token again; the engine's delivered set and
  // `verify` cover what the new answer no longer mentions (no tombstones on Xandikos/Cyrus).
  const token = cursor?.t ?? "";
  const props = options.inline ? ["d:getetag", dataProp(kind)] : ["d:getetag"];
  const ms = await report(ref, token, props, signal);
  if (ms.syncToken === undefined) {
    throw new ProtocolError(`REPORT ${ms.url}`, "sync-collection answer has no <sync-token>");
  }
  const self = hrefKey(href, t.origin);
  let truncated = false;
  type Entry = { href: string; etag?: string; raw?: string; removed: boolean };
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
      entries.push({ href: path, removed: true });
      continue;
    }
    if (r.props.size === 0) continue; // e.g. a 403 member: nothing we may read
    entries.push({ href: path, etag: etagOf(r), raw: dataOf(r, kind), removed: false });
  }
  const missing = entries.filter((e) => !e.removed && e.raw === undefined).map((e) => e.href);
  const fetched = missing.length
    ? await multiget(t, href, kind, missing, options, signal)
    : undefined;

  const changes: Change[] = entries.map((e) => {
    let { raw, etag } = e;
    if (!e.removed && raw === undefined) {
      const got = fetched?.get(hrefKey(e.href, t.origin));
      if (got) {
        raw = got.raw;
        etag = got.etag ?? etag;
      }
    }
    return raw === undefined
      ? itemDelete(e.href, href)
      : { kind: "update", object: toItem(e.href, href, etag, raw, options), created: fullSync };
  });
  const newCursor: SyncCursor = { m: "sync", t: ms.syncToken };
  return truncated ? { changes, newCursor, nextPage: { t: ms.syncToken } } : { changes, newCursor };
}

/**
 * Sends the report. Xandikos answers an unknown token with a bare HTTP 500 (no
 * `valid-sync-token`), which looks like any other server error. After the shared client's
 * retries, a 500 on a saved token is only taken as an invalid token (`StateInvalidError`: the
 * orchestrator resyncs) when it is conclusive: the same REPORT with the collection's current
 * token (read by PROPFIND) succeeds, and ours then fails again. Anything else (the probe fails,
 * the token is the current one, ours now succeeds) stays transient or goes on.
 */
async function report(
  ref: CollectionRef,
  token: string,
  props: string[],
  signal: AbortSignal,
): Promise<MultiStatus & { url: string }> {
  const ask = (tok: string, p: string[]) =>
    ref.t.multistatus({
      method: "REPORT",
      href: ref.href,
      depth: "0",
      body: syncCollectionBody(tok, p, ref.options.limit),
      signal,
    });
  try {
    return await ask(token, props);
  } catch (error) {
    if (!(token && isServerError(error))) throw error;
    const current = await collectionInfo(ref.t, ref.href, signal, [
      "d:resourcetype",
      "d:sync-token",
    ]).then(
      (c) => c?.syncToken,
      () => undefined,
    );
    if (current === undefined || current === token) throw error;
    // The server answers this REPORT at all (etags only: cheap)? If not, the 500 is the server's.
    const works = await ask(current, ["d:getetag"]).then(
      () => true,
      () => false,
    );
    if (!works) throw error;
    try {
      return await ask(token, props);
    } catch (again) {
      if (!isServerError(again)) throw again;
      throw new StateInvalidError(
        `REPORT ${new URL(ref.href, ref.t.origin)}: HTTP 500 for the saved sync token while the ` +
          "collection's current token is answered: the token is unknown to the server (a full sync is needed)",
        { cause: again },
      );
    }
  }
}

const isServerError = (error: unknown): boolean =>
  error instanceof TransientError && error.status === 500;
