/**
 * The one Graph delta page fetcher (PROTOCOLS.md §2.2): a full sync starts at the resource's
 * `/delta` URL with its query options; `@odata.nextLink` pages the round; the whole
 * `@odata.deltaLink` is the next round's cursor. Every scope (folders, messages, events,
 * contacts) is this plus a mapping of items to changes.
 */
import { z } from "zod";
import { NotFoundError, ProtocolError } from "../../src/core/errors.js";
import type { ChangeSource, Page, PageRequest } from "../../src/core/source.js";
import type { Change, ObjectType, SyncObject } from "../../src/core/types.js";
import { type HttpClient, type QueryValue, sameOrigin } from "../../src/http/index.js";
import { type DeltaItem, DeltaItemSchema, DeltaPageSchema } from "./schemas.js";

/** The calendar window a round was started with (ISO 8601, UTC). */
export const WindowSchema = z.object({ s: z.string().min(1), e: z.string().min(1) }).strict();
export type DeltaWindow = z.infer<typeof WindowSchema>;

/** A cursor or page token: a Graph link (`l`) and the calendar window it carries (`w`). */
export interface DeltaLink {
  l: string;
  w?: DeltaWindow;
}

/** A link read back from a state: absolute, and on the account's origin only. */
export function linkString(baseUrl: string): z.ZodType<string> {
  return z
    .string()
    .url()
    .refine((l) => sameOrigin(l, baseUrl), {
      message: `the link is not on the account's origin ${new URL(baseUrl).origin}`,
    });
}

/** Validates a cursor or page token read back from a state. */
export function linkSchema(baseUrl: string): z.ZodType<DeltaLink> {
  return z.object({ l: linkString(baseUrl), w: WindowSchema.optional() }).strict();
}

/**
 * A link from a response, made absolute. A link to another host is refused before it is
 * followed or stored: it would get our bearer token.
 */
export function serverLink(endpoint: string, link: string, baseUrl: string): string {
  if (!sameOrigin(link, baseUrl))
    throw new ProtocolError(endpoint, `a paging link leaves the origin ${new URL(baseUrl).origin}`);
  return new URL(link, baseUrl).href;
}

/** What a mapping gets besides the items. */
export interface DeltaContext {
  /** False during a full sync (every item is new to the importer). */
  incremental: boolean;
  /** The window of a calendar view round. */
  window: DeltaWindow | undefined;
  signal: AbortSignal;
}

export interface DeltaSourceOptions {
  http: HttpClient;
  /** Names the resource in errors, e.g. `graph.messages.delta`. */
  endpoint: string;
  /** The first request of a full sync: the `/delta` path and its query (sent only then). */
  start(window: DeltaWindow | undefined): { path: string; query?: Record<string, QueryValue> };
  /** The `Prefer` header of every request of a round (Graph wants the same one throughout). */
  prefer: string;
  /** The window of a full sync, for calendar views; `undefined` elsewhere. */
  window?(req: PageRequest<DeltaLink, DeltaLink>): DeltaWindow | undefined;
  /** Maps one page's items to changes, in order. */
  map(items: DeltaItem[], context: DeltaContext): Change[] | Promise<Change[]>;
}

/** The delta page fetcher of one Graph resource. */
export function deltaSource(options: DeltaSourceOptions): ChangeSource<DeltaLink, DeltaLink> {
  const { http, endpoint } = options;
  const schema = linkSchema(http.baseUrl);
  return {
    cursorSchema: schema,
    pageSchema: schema,
    async fetchPage(req) {
      const link = req.page ?? req.cursor;
      const window = link ? link.w : options.window?.(req);
      const first = link ? undefined : options.start(window);
      const res = await http.request({
        path: link ? link.l : (first?.path as string),
        query: first?.query,
        headers: { prefer: options.prefer },
        schema: DeltaPageSchema,
        endpoint,
        signal: req.signal,
      });
      const body = res.body;
      const nextLink = body["@odata.nextLink"];
      const deltaLink = body["@odata.deltaLink"];
      const next =
        nextLink === undefined ? undefined : serverLink(endpoint, nextLink, http.baseUrl);
      const delta =
        deltaLink === undefined ? undefined : serverLink(endpoint, deltaLink, http.baseUrl);
      const changes = await options.map(body.value, {
        incremental: req.cursor !== undefined,
        window,
        signal: req.signal,
      });
      const page: Page<DeltaLink, DeltaLink> = { changes };
      const withWindow = (l: string): DeltaLink => (window ? { l, w: window } : { l });
      // An empty page with a nextLink is normal: the engine keeps paging until the deltaLink.
      if (next !== undefined) page.nextPage = withWindow(next);
      else if (delta !== undefined) page.newCursor = withWindow(delta);
      else
        throw new ProtocolError(
          endpoint,
          "a delta page carried neither @odata.nextLink nor @odata.deltaLink",
        );
      return page;
    },
  };
}

/** True for a delta item that reports a removal. */
export function isRemoved(item: DeltaItem): boolean {
  return item["@removed"] !== undefined;
}

/** Runs `fn` over `items` with at most `concurrency` calls at a time, keeping the order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** What `resolvingDeltaSource` adds to a delta source's options. */
export interface ResolvingOptions extends Omit<DeltaSourceOptions, "map"> {
  /** GETs in flight per page (the account's limiter caps the total anyway). */
  concurrency: number;
  /** Resolve `@removed` with a GET (the server-wide scopes) instead of reporting a delete. */
  resolveRemoved: boolean;
  /** An item's change, or `undefined` when only a GET of the object (`current`) can tell. */
  mapItem(item: DeltaItem, context: DeltaContext): Change | undefined;
  /** The object as the server holds it now, seen from this scope (`resolve`: follow a move). */
  current(id: string, signal: AbortSignal, resolve: boolean): Promise<Change>;
}

/**
 * A delta source whose items are mapped one by one, asking the server (`current`, a few at a
 * time, order kept) about those the page cannot settle: a sparse update, a removal that may be
 * a move. The engine's `verify` (delivered objects a resumed page no longer lists) asks the same,
 * and follows a move as the pages do: in a composite scope, a message that left this folder
 * lives on in another one, perhaps one the round already visited (a delete would lose it).
 */
export function resolvingDeltaSource(
  options: ResolvingOptions,
): ChangeSource<DeltaLink, DeltaLink> {
  const { concurrency, resolveRemoved, current } = options;
  const source = deltaSource({
    ...options,
    map: async (items, context) => {
      const pending: { index: number; id: string }[] = [];
      const changes = items.map((item, index) => {
        const change = options.mapItem(item, context);
        if (change === undefined) pending.push({ index, id: item.id });
        return change;
      });
      const resolved = await mapLimited(pending, concurrency, (p) =>
        current(p.id, context.signal, resolveRemoved),
      );
      pending.forEach((p, i) => {
        changes[p.index] = resolved[i];
      });
      return changes as Change[];
    },
  });
  return {
    ...source,
    verify: (keys: string[], req: PageRequest<DeltaLink, DeltaLink>) =>
      mapLimited(keys, concurrency, (id) => current(id, req.signal, resolveRemoved)),
  } as ChangeSource<DeltaLink, DeltaLink>;
}

/** A Graph object (message, contact) as a `SyncObject` of the scope `parentKey`. */
export function graphObject<T extends { id: string; changeKey?: unknown }>(
  type: ObjectType,
  value: T,
  parentKey: string,
): SyncObject<T> {
  return {
    sourcekey: value.id,
    type,
    parentKey,
    changeKey: typeof value.changeKey === "string" ? value.changeKey : undefined,
    data: value,
  };
}

/** The hard delete of a Graph object of the scope `parentKey`. */
export function graphDelete(type: ObjectType, id: string, parentKey: string): Change {
  return { kind: "delete", object: { sourcekey: id, type, parentKey }, soft: false };
}

/** `GET` of one object (`me/messages/{id}`, …); `undefined` when the server says it is gone. */
export async function getObject(
  http: HttpClient,
  req: { path: string; query?: Record<string, QueryValue>; prefer: string; endpoint: string },
  signal: AbortSignal,
): Promise<DeltaItem | undefined> {
  try {
    const res = await http.request({
      path: req.path,
      query: req.query,
      headers: { prefer: req.prefer },
      schema: DeltaItemSchema,
      endpoint: req.endpoint,
      signal,
    });
    return res.body;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}
