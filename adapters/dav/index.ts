/**
 * CalDAV / CardDAV adapter: discovery, hierarchy, items through RFC 6578 sync-collection (with a
 * getctag + etag-diff fallback), and conditional writes for two-way sync.
 */
import { compositeSource } from "../../src/core/composite.js";
import { ArgumentError, NotFoundError } from "../../src/core/errors.js";
import { createLifecycle } from "../../src/core/lifecycle.js";
import { snapshotSource } from "../../src/core/snapshot.js";
import { type Account, createSyncable, type Syncable } from "../../src/core/syncable.js";
import type { SyncObject } from "../../src/core/types.js";
import {
  COLLECTION_PROPS,
  collectionInfo,
  type DavCollection,
  type DavHomes,
  type DavKind,
  discoverHomes,
  hrefKey,
  hrefPath,
  LISTING_PROPS,
  listCollections,
  RESOLVE_PROPS,
} from "./dav-discovery.js";
import type { DavItem, ItemOptions } from "./dav-fetch.js";
import { type DavMode, itemSource } from "./dav-items.js";
import {
  createDavTransport,
  type DavTransport,
  type DavTransportOptions,
} from "./dav-transport.js";
import { type DavWrite, getItem, putItem, removeItem, type WriteOptions } from "./dav-write.js";

export type { DavCollection, DavHomes, DavKind } from "./dav-discovery.js";
export type { DavItem } from "./dav-fetch.js";
export type { DavMode } from "./dav-items.js";
export type { DavBasics } from "./dav-parse.js";
export { davWriteTarget } from "./dav-push.js";
export type { DavWrite, WriteOptions } from "./dav-write.js";

const ADAPTER = "dav";

/** Options of `createDavAccount`. */
export interface DavOptions {
  /** Server, principal or collection URL; discovery starts here (then `/.well-known/cal|carddav`). */
  url: string;
  /** HTTP Basic user name. */
  username?: string;
  /** HTTP Basic password (never logged, never put into states or errors). */
  password?: string;
  /** A fixed bearer token (instead of Basic). */
  accessToken?: string;
  /** Supplies a bearer token; called again with `forceRefresh` after a 401. */
  getAccessToken?: (opts: { forceRefresh: boolean }) => Promise<string>;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Retries of idempotent requests on 5xx/429/network errors (the shared client's). */
  retry?: { retries?: number; minDelayMs?: number; maxDelayMs?: number };
  /** `auto` (default): sync-collection where the collection reports it, else getctag + etag diff. */
  mode?: DavMode;
  /** Ask for the bodies inside the sync report (default true); false: always multiget. */
  inlineData?: boolean;
  /**
   * `DAV:limit` sent with sync-collection (a server that honours it truncates with 507 and the
   * engine checkpoints between pages). Off by default: Xandikos truncates without a 507 and
   * silently skips changes, Radicale ignores it.
   */
  syncLimit?: number;
  /** Hrefs per multiget request (default 500). */
  multigetBatch?: number;
  /** Parse the basics with ical.js (default true). */
  parse?: boolean;
}

/** Everything discovery finds. */
export interface DavDiscovery extends DavHomes {
  collections: DavCollection[];
}

/** A CalDAV/CardDAV account. */
export interface DavAccount extends Account<DavItem | DavCollection> {
  /** `dav:user@host/path`, without credentials. */
  readonly id: string;
  /** Principal, home sets and every calendar and address book with their properties. */
  discover(signal?: AbortSignal): Promise<DavDiscovery>;
  /** The items of one collection, by href (`/alice/work/`) or absolute URL. */
  collection(href: string): Syncable<DavItem>;
  /** The items of one calendar: an href, a URL, or a name under the calendar home (`work`). */
  calendar(calendarId: string): Syncable<DavItem>;
  /** The items of one address book: an href, a URL, or a name under the address-book home. */
  addressBook(id: string): Syncable<DavItem>;
  /** Every calendar's items (a composite state: one cursor per calendar). */
  calendars(): Syncable<DavItem>;
  /** Every address book's items (a composite state: one cursor per address book). */
  contacts(): Syncable<DavItem>;
  /** Calendars and address books added, renamed or removed (a listing diff kept in the state). */
  hierarchy(): Syncable<DavCollection>;
  /** Creates (`If-None-Match: *`) or conditionally replaces (`ifMatch`) a member; 412 → ConflictError. */
  put(obj: DavWrite, options?: WriteOptions): Promise<{ href: string; etag?: string }>;
  /** Deletes a member, conditionally with `ifMatch`; 412 → ConflictError, 404 → NotFoundError. */
  remove(href: string, options?: Omit<WriteOptions, "overwrite">): Promise<void>;
  /** A member's body and etag now (GET); undefined when it does not exist. */
  get(
    href: string,
    signal?: AbortSignal,
  ): Promise<{ href: string; raw: string; etag?: string } | undefined>;
  close(): Promise<void>;
}

/**
 * Creates a CalDAV/CardDAV account.
 *
 * @example
 * const account = createDavAccount({ url: "https://dav.example.com/", username: "alice", password });
 * const state = await account.calendar("work").sync({ update: (o) => db.upsert(o), delete: (o) => db.remove(o.sourcekey) });
 */
export function createDavAccount(options: DavOptions): DavAccount {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch (cause) {
    throw new ArgumentError("dav: url must be an absolute http(s) URL", { cause });
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new ArgumentError(`dav: url must be http(s), not ${base.protocol}`);
  }
  const transportOptions: DavTransportOptions = {
    accessToken: options.accessToken,
    getAccessToken: options.getAccessToken,
    basicAuth:
      options.username !== undefined
        ? { username: options.username, password: options.password ?? "" }
        : undefined,
    headers: options.headers,
    timeoutMs: options.timeoutMs,
    retry: options.retry,
  };
  const life = createLifecycle(
    async () => createDavTransport(base.toString(), transportOptions),
    (t) => t.close(),
    `the DAV account for ${base.origin}`,
  );
  const itemOptions: ItemOptions = {
    inline: options.inlineData ?? true,
    limit: options.syncLimit,
    batch: options.multigetBatch ?? 500,
    parse: options.parse ?? true,
  };
  const mode = options.mode ?? "auto";
  const user = options.username ? `${options.username}@` : "";
  const accountId = `dav:${user}${base.host}${base.pathname.replace(/\/$/, "")}`;
  const known = new Map<string, DavCollection>();
  let homes: Promise<DavHomes> | undefined;

  const getHomes = async (t: DavTransport, signal?: AbortSignal): Promise<DavHomes> => {
    if (!homes) {
      homes = discoverHomes(t, base.toString(), signal);
      homes.catch(() => {
        homes = undefined;
      });
    }
    return homes;
  };

  /** The collections; `withTags` adds getctag and sync-token (only `discover()` needs them). */
  const list = async (signal?: AbortSignal, withTags = false): Promise<DavCollection[]> => {
    const t = await life.get();
    const props = withTags ? COLLECTION_PROPS : LISTING_PROPS;
    const found = await listCollections(t, await getHomes(t, signal), signal, props);
    for (const c of found) known.set(c.href, c);
    return found;
  };

  /** The href an id (href, URL or name) stands for, with a trailing slash; no request but the home set. */
  const hrefOf = async (id: string, kind: DavKind | undefined, signal: AbortSignal) => {
    const t = await life.get();
    let href: string;
    if (isHref(id)) href = pathOf(id, t.origin);
    else {
      const h = await getHomes(t, signal);
      const home = (kind === "addressbook" ? h.addressbookHomes : h.calendarHomes)[0];
      if (!home) throw new NotFoundError(`dav: no ${kind ?? "calendar"} home to find "${id}" in`);
      href = new URL(`${encodeURIComponent(id)}/`, new URL(home, t.origin)).pathname;
    }
    return href;
  };

  /** Resolves an id (href, URL or name) to a collection of the given kind. */
  const resolve = async (id: string, kind: DavKind | undefined, signal: AbortSignal) => {
    const t = await life.get();
    const href = await hrefOf(id, kind, signal);
    const cached = known.get(href);
    if (cached && (kind === undefined || cached.kind === kind)) return { t, collection: cached };
    const info = await collectionInfo(t, href, signal, RESOLVE_PROPS);
    if (!info || (kind !== undefined && info.kind !== kind)) {
      throw new NotFoundError(
        `dav: ${new URL(href, t.origin)} is not a ${kind ?? "calendar or address book"}`,
      );
    }
    known.set(info.href, info);
    return { t, collection: info };
  };

  const itemsOf = (id: string, kind: DavKind | undefined) =>
    itemSource({
      mode,
      transport: () => life.get(),
      identity: (origin) =>
        isHref(id)
          ? new URL(pathOf(id, origin), origin).href
          : `${accountId} ${kind ?? "collection"}:${id}`,
      owns: (href, origin) =>
        isHref(id)
          ? hrefKey(href, origin) === hrefKey(pathOf(id, origin), origin)
          : hrefKey(href, origin).split("/").pop() === id,
      resolve: async (signal) => (await resolve(id, kind, signal)).collection,
      options: itemOptions,
    });

  const scopeOf = (prefix: string, id: string) => `${prefix}:${id}`;
  const items = (prefix: string, id: string, kind: DavKind | undefined): Syncable<DavItem> =>
    createSyncable<DavItem>({
      adapter: ADAPTER,
      scope: scopeOf(prefix, id),
      source: itemsOf(id, kind),
    });

  const all = (kind: DavKind, scope: string): Syncable<DavItem> =>
    createSyncable<DavItem>({
      adapter: ADAPTER,
      scope,
      source: compositeSource({
        name: `dav ${scope}`,
        listChildren: async (signal) =>
          (await list(signal)).filter((c) => c.kind === kind).map((c) => c.href),
        child: (href) => itemsOf(href, kind),
      }),
    });

  return {
    id: accountId,
    async discover(signal) {
      const t = await life.get();
      const h = await getHomes(t, signal);
      return { ...h, collections: await list(signal, true) };
    },
    collection: (href) => items("collection", href, undefined),
    calendar: (calendarId) => items("calendar", calendarId, "calendar"),
    addressBook: (bookId) => items("addressbook", bookId, "addressbook"),
    calendars: () => all("calendar", "calendars"),
    contacts: () => all("addressbook", "contacts"),
    hierarchy: () =>
      createSyncable<DavCollection>({
        adapter: ADAPTER,
        scope: "hierarchy",
        source: snapshotSource<DavCollection>({
          type: "folder",
          list: async (req) => (await list(req.signal)).map(toFolder),
        }),
      }),
    async put(obj, writeOptions) {
      return putItem(await life.get(), obj, writeOptions);
    },
    async remove(href, writeOptions) {
      return removeItem(await life.get(), href, writeOptions);
    },
    async get(href, signal) {
      return getItem(await life.get(), href, signal);
    },
    close: () => life.close(),
  };
}

/** An id given as an href or absolute URL (not a name under a home set). */
const isHref = (id: string): boolean => id.startsWith("/") || /^https?:/i.test(id);

/** The path of an href or URL id, with a trailing slash. */
function pathOf(id: string, origin: string): string {
  const path = hrefPath(id, origin);
  return path.endsWith("/") ? path : `${path}/`;
}

/** A collection as a hierarchy folder; its changeKey moves on a rename, not on item changes. */
function toFolder(c: DavCollection): SyncObject<DavCollection> {
  const data: DavCollection = { href: c.href, kind: c.kind, reports: c.reports };
  if (c.displayname !== undefined) data.displayname = c.displayname;
  if (c.description !== undefined) data.description = c.description;
  if (c.color !== undefined) data.color = c.color;
  return {
    sourcekey: c.href,
    type: "folder",
    changeKey: JSON.stringify([
      c.kind,
      c.displayname ?? null,
      c.description ?? null,
      c.color ?? null,
    ]),
    data,
  };
}
