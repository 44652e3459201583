/**
 * An emulator of the documented behaviour of Microsoft Graph's Outlook delta queries and change
 * notifications on node:http (PROTOCOLS.md §2): `/delta` rounds paged by `@odata.nextLink`
 * (`$skiptoken`) and closed by `@odata.deltaLink` (`$deltatoken`) with the query options built
 * into the tokens; pages read as of the round's start; `@removed`; moves reported as removed in
 * one folder and new in the other; ids that change on a move unless `Prefer:
 * IdType="ImmutableId"`; calendar views with occurrences of recurring series and the documented
 * `@removed` for events outside the window; `odata.maxpagesize`; optional empty pages and sparse
 * updates; the 410 family (`syncStateNotFound`, `resyncRequired`, `syncStateInvalid`, 410 +
 * `Location`); throttling (429/503 + `Retry-After`, 4 concurrent requests per mailbox);
 * subscriptions with the validation handshake, notifications and lifecycle events POSTed to the
 * receiver.
 *
 * Paths: `/v1.0/me/...` and `/v1.0/subscriptions` (`createGraphAccount({ baseUrl: url + "v1.0/" })`).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  CONTACTS_ROOT,
  type Contact,
  type Folder,
  GraphModel,
  type Message,
  type Versioned,
  type ViewEvent,
} from "./emulator-model.js";

export { GraphModel } from "./emulator-model.js";

/** A scripted failure for the next matching request(s). */
export type Fault = { path?: RegExp; query?: RegExp; method?: string; times?: number } & (
  | { status: number; code?: string; headers?: Record<string, string> }
  | { reset: true }
  | { malformed: true }
  /** Answers 200 with this body instead (a server that breaks the schema). */
  | { json: unknown }
);

export interface EmulatorOptions {
  /** Upper bound on every page, whatever `odata.maxpagesize` asks. */
  maxPageSize?: number;
  /** Accepted bearer tokens; empty means no auth check. */
  tokens?: string[];
  /** Every Nth page of a round is empty (with a nextLink): allowed by the docs. */
  emptyPageEvery?: number;
  /** Updated messages carry only what changed: `read` for read-flag-only changes, `all` always. */
  sparse?: "none" | "read" | "all";
  /** Requests in flight per mailbox before 429 (Outlook: 4). */
  maxConcurrent?: number;
  /** Delay before each response (benchmarks, concurrency tests). */
  latencyMs?: number;
  /** Origin to put in paging links instead of our own (tests the adapter refuses other hosts). */
  linkOrigin?: string;
}

interface Subscription {
  id: string;
  resource: string;
  changeType: string[];
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState?: string;
  expirationDateTime: string;
  reauthorized: number;
}

/** What a delta token carries: the round's kind, start and snapshot seqs, position, options. */
interface Token {
  k: string;
  /** Changes after this seq (0: full sync). */
  s: number;
  /** The round's snapshot. */
  u: number;
  /** Next log index (skip tokens). */
  i?: number;
  /** Pages served in this round (for empty pages). */
  n?: number;
  /** $select. */
  sel?: string;
  /** Calendar window (epoch ms). */
  w?: [number, number];
}

/** What a scope shows of a stored version: one object (an event may show several). */
class Rendered {
  #body: Record<string, unknown> | undefined;

  constructor(
    readonly id: string,
    /**
     * The stored version shown (never mutated: a change stores a new one), so its serialized
     * form can be cached on it.
     */
    readonly source: object,
    readonly render: () => Record<string, unknown>,
    /** Listed as `@removed` in an incremental round, never in a full one (calendar windows). */
    readonly outside = false,
  ) {}

  /** The full form, rendered on first use (a cached serialized form needs none). */
  get body(): Record<string, unknown> {
    this.#body ??= this.render();
    return this.#body;
  }
}

/** A serialized full item: which scope, id and `$select` it was written for. */
interface Serialized {
  kind: string;
  id: string;
  sel: string | undefined;
  bytes: Buffer;
}

interface DeltaSpec<V> {
  kind: string;
  store: Versioned<V>;
  /** What the scope shows of `id` as of `seq`. */
  view(id: string, seq: number, token: Token): Rendered[];
  /** A sparse form of an update (only what changed), or undefined for the full one. */
  sparse?(before: Rendered, now: Rendered): Record<string, unknown> | undefined;
}

const encode = (t: Token) => Buffer.from(JSON.stringify(t)).toString("base64url");
function decode(text: string): Token | undefined {
  try {
    const t = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Token;
    return typeof t.k === "string" && typeof t.u === "number" ? t : undefined;
  } catch {
    return undefined;
  }
}

export class GraphEmulator {
  model = new GraphModel();
  readonly requests: { method: string; path: string; query: URLSearchParams; prefer: string }[] =
    [];
  readonly subscriptions = new Map<string, Subscription>();
  /** Validation handshakes made: the URL called and whether the answer was right. */
  readonly validations: { url: string; ok: boolean }[] = [];
  /** Most requests seen in flight at once. */
  maxInFlight = 0;
  options: EmulatorOptions;
  url = "";
  #server: Server;
  #inFlight = 0;
  #faults: Fault[] = [];
  #chaos: { rand: () => number; rate: number; last: boolean } | undefined;
  #deliveries: Promise<unknown>[] = [];
  /**
   * Serialized items by stored version, then scope, id and `$select` (see #serialized). A Map,
   * not a WeakMap: the model keeps every version anyway, and 100k ephemerons slow every GC.
   */
  #bytes = new Map<object, Serialized[]>();

  private constructor(options: EmulatorOptions) {
    this.options = options;
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.#inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
        res.on("close", () => this.#inFlight--);
        const run = () => {
          void this.#handle(req, res, Buffer.concat(chunks).toString("utf8")).catch(
            (error: unknown) => sendError(res, 500, "generalException", String(error)),
          );
        };
        if (this.options.latencyMs) setTimeout(run, this.options.latencyMs);
        else run();
      });
    });
    this.#wire();
  }

  static async start(options: EmulatorOptions = {}, port = 0): Promise<GraphEmulator> {
    const emulator = new GraphEmulator(options);
    await new Promise<void>((resolve) => emulator.#server.listen(port, "127.0.0.1", resolve));
    emulator.url = `http://127.0.0.1:${(emulator.#server.address() as AddressInfo).port}/`;
    return emulator;
  }

  /** The `baseUrl` of an account on this emulator. */
  get baseUrl(): string {
    return `${this.url}v1.0/`;
  }

  /** A fresh model on the same server (one per conformance history). */
  reset(userId = "user-1"): void {
    this.model = new GraphModel(userId);
    this.#bytes.clear();
    this.#wire();
    this.requests.length = 0;
    this.subscriptions.clear();
    this.validations.length = 0;
    this.#faults = [];
    this.#chaos = undefined;
    this.maxInFlight = 0;
  }

  /** Forgets scripted faults no request has triggered yet. */
  dropInjected(): void {
    this.#faults = [];
  }

  /** Fails the next matching request(s) as scripted. */
  inject(fault: Fault): void {
    this.#faults.push({ times: 1, ...fault });
  }

  /** Random transient faults (429/503/504 + Retry-After, resets), never twice in a row. */
  chaos(seed: number, rate: number): void {
    let s = seed >>> 0 || 1;
    const rand = () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) / 2 ** 32;
    };
    this.#chaos = { rand, rate, last: false };
  }

  /** Waits for the notifications and lifecycle events sent so far. */
  async flush(): Promise<void> {
    while (this.#deliveries.length) await Promise.allSettled(this.#deliveries.splice(0));
  }

  /** Sends a lifecycle event for a subscription (`subscriptionRemoved` also removes it). */
  lifecycle(
    subscriptionId: string,
    event: "reauthorizationRequired" | "subscriptionRemoved" | "missed",
  ): void {
    const sub = this.subscriptions.get(subscriptionId);
    if (!sub) throw new Error(`no subscription ${subscriptionId}`);
    if (event === "subscriptionRemoved") this.subscriptions.delete(sub.id);
    const target = sub.lifecycleNotificationUrl;
    if (!target) return;
    this.#post(target, {
      value: [
        {
          subscriptionId: sub.id,
          subscriptionExpirationDateTime: sub.expirationDateTime,
          tenantId: "tenant-1",
          clientState: sub.clientState,
          lifecycleEvent: event,
        },
      ],
    });
  }

  /** POSTs any body to a URL, as Graph would (forged deliveries in tests use fetch directly). */
  #post(url: string, body: unknown): void {
    this.#deliveries.push(
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      })
        .then((r) => r.arrayBuffer())
        .catch(() => undefined),
    );
  }

  async close(): Promise<void> {
    await this.flush();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #wire(): void {
    this.model.onChange = (kind, id, change, where) => {
      for (const sub of this.subscriptions.values()) {
        if (!sub.changeType.includes(change) || !this.#matches(sub.resource, kind, where)) continue;
        const type = kind === "message" ? "Message" : kind === "event" ? "Event" : "Contact";
        this.#post(sub.notificationUrl, {
          value: [
            {
              subscriptionId: sub.id,
              subscriptionExpirationDateTime: sub.expirationDateTime,
              changeType: change,
              resource: `Users/${this.model.userId}/${type}s/${id}`,
              resourceData: {
                "@odata.type": `#Microsoft.Graph.${type}`,
                "@odata.id": `Users/${this.model.userId}/${type}s/${id}`,
                id,
              },
              clientState: sub.clientState,
              tenantId: "tenant-1",
            },
          ],
        });
      }
    };
  }

  #matches(resource: string, kind: string, where: string): boolean {
    const r = resource.replace(/^\/?(me|users\/[^/]+)\//i, "").toLowerCase();
    if (kind === "message") {
      if (r === "messages") return true;
      const m = /^mailfolders\('([^']+)'\)\/messages$/.exec(r);
      return m !== null && m[1] === where.toLowerCase();
    }
    if (kind === "event") {
      if (r === "events") return where === "primary";
      const m = /^calendars\/([^/]+)\/events$/.exec(r);
      return m !== null && m[1] === where.toLowerCase();
    }
    return r === "contacts";
  }

  async #handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<unknown> {
    // Behind a TLS-terminating proxy (`X-Forwarded-Proto: https`) links are https, as Graph's are.
    const scheme = req.headers["x-forwarded-proto"] === "https" ? "https" : "http";
    const url = new URL(req.url ?? "/", `${scheme}://emulator`);
    const method = req.method ?? "GET";
    const prefer = [req.headers.prefer ?? ""].flat().join(", ");
    this.requests.push({ method, path: url.pathname, query: url.searchParams, prefer });
    if (this.#fault(req, res, url, method)) return;
    const tokens = this.options.tokens;
    if (tokens?.length && !tokens.some((t) => req.headers.authorization === `Bearer ${t}`))
      return sendError(res, 401, "InvalidAuthenticationToken", "Access token is empty or invalid.");
    if (this.options.maxConcurrent && this.#inFlight > this.options.maxConcurrent)
      return sendError(
        res,
        429,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
        { "retry-after": "1" },
      );
    const who = /^\/v1\.0\/users\/([^/]+)/i.exec(url.pathname)?.[1];
    const p = url.pathname
      .replace(/^\/v1\.0\//, "/")
      .replace(/^\/(me|users\/[^/]+)(\/|$)/i, "/me$2");
    const q = url.searchParams;
    const immutable = /IdType="ImmutableId"/i.test(prefer);
    const model = this.model;
    let m: RegExpExecArray | null;
    if (method !== "GET" || q.has("$filter")) {
      const ifMatch = [req.headers["if-match"] ?? []].flat()[0];
      const done = this.#write(res, p, method, body, q, ifMatch, immutable);
      if (done) return;
    }
    if (p === "/me" || p === "/me/")
      return sendJson(res, 200, {
        // Another user's mailbox (application permissions) is another identity.
        id: who === undefined ? model.userId : decodeURIComponent(who),
        userPrincipalName: `${model.userId}@example.com`,
      });
    if (p === "/me/mailFolders/delta")
      return this.#delta(res, url, prefer, this.#foldersSpec("mf", model.mailFolders));
    if (p === "/me/contactFolders/delta")
      return this.#delta(res, url, prefer, this.#foldersSpec("cf", model.contactFolders));
    if ((m = /^\/me\/mailFolders\/([^/]+)\/messages\/delta$/.exec(p))) {
      const folderId = decodeURIComponent(m[1] as string);
      if (!model.mailFolders.get(folderId))
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return this.#delta(res, url, prefer, this.#messagesSpec(folderId, immutable));
    }
    if (p === "/me/contacts/delta")
      return this.#delta(res, url, prefer, this.#contactsSpec(CONTACTS_ROOT, "default"));
    if ((m = /^\/me\/contactFolders\/([^/]+)\/contacts\/delta$/.exec(p))) {
      const folderId = decodeURIComponent(m[1] as string);
      if (!model.contactFolders.get(folderId))
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return this.#delta(res, url, prefer, this.#contactsSpec(folderId, folderId));
    }
    if (p === "/me/calendarView/delta")
      return this.#delta(res, url, prefer, this.#eventsSpec("primary"));
    if ((m = /^\/me\/calendars\/([^/]+)\/calendarView\/delta$/.exec(p))) {
      const calendarId = decodeURIComponent(m[1] as string);
      if (!model.calendars.has(calendarId))
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return this.#delta(res, url, prefer, this.#eventsSpec(calendarId));
    }
    if (p === "/me/calendars" && method === "GET") return this.#calendars(res, q);
    if ((m = /^\/me\/calendars\/([^/]+)$/.exec(p)) && method === "GET") {
      const calendar = model.calendars.get(decodeURIComponent(m[1] as string));
      if (!calendar)
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return sendJson(res, 200, { ...calendar, isDefaultCalendar: calendar.id === "primary" });
    }
    if ((m = /^\/me\/(mailFolders|contactFolders)\/([^/]+)$/.exec(p)) && method === "GET") {
      const store = m[1] === "mailFolders" ? model.mailFolders : model.contactFolders;
      const folder = store.get(decodeURIComponent(m[2] as string));
      if (!folder)
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return sendJson(res, 200, { ...folder, "@odata.etag": `W/"${folder.changeKey}"` });
    }
    if ((m = /^\/me\/messages\/([^/]+)$/.exec(p)) && method === "GET") {
      const id = decodeURIComponent(m[1] as string).split("@")[0] as string;
      const msg = model.messages.get(id);
      if (!msg)
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return sendJson(
        res,
        200,
        select(renderMessage(msg, immutable), q.get("$select") ?? undefined),
      );
    }
    if ((m = /^\/me\/events\/([^/]+)$/.exec(p)) && method === "GET") {
      const ev = model.viewEvent(decodeURIComponent(m[1] as string));
      if (!ev)
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return sendJson(res, 200, renderEvent(ev));
    }
    if ((m = /^\/me\/contacts\/([^/]+)$/.exec(p)) && method === "GET") {
      const c = model.contacts.get(decodeURIComponent(m[1] as string));
      if (!c)
        return sendError(
          res,
          404,
          "ErrorItemNotFound",
          "The specified object was not found in the store.",
        );
      return sendJson(res, 200, select(renderContact(c), q.get("$select") ?? undefined));
    }
    if (p === "/subscriptions" && method === "POST") return this.#subscribe(res, body);
    if ((m = /^\/subscriptions\/([^/]+)\/reauthorize$/.exec(p)) && method === "POST") {
      const sub = this.subscriptions.get(decodeURIComponent(m[1] as string));
      if (!sub) return sendError(res, 404, "ResourceNotFound", "The object was not found.");
      sub.reauthorized++;
      res.writeHead(200).end();
      return;
    }
    if ((m = /^\/subscriptions\/([^/]+)$/.exec(p))) {
      const sub = this.subscriptions.get(decodeURIComponent(m[1] as string));
      if (!sub) return sendError(res, 404, "ResourceNotFound", "The object was not found.");
      if (method === "DELETE") {
        this.subscriptions.delete(sub.id);
        res.writeHead(204).end();
        return;
      }
      if (method === "PATCH") {
        const patch = JSON.parse(body || "{}") as { expirationDateTime?: string };
        if (patch.expirationDateTime) sub.expirationDateTime = patch.expirationDateTime;
        return sendJson(res, 200, subscriptionJson(sub));
      }
    }
    sendError(res, 400, "BadRequest", `Resource not found for the segment '${p}'.`);
  }

  #fault(req: IncomingMessage, res: ServerResponse, url: URL, method: string): boolean {
    const path = url.pathname;
    const i = this.#faults.findIndex(
      (f) =>
        (!f.path || f.path.test(path)) &&
        (!f.query || f.query.test(decodeURIComponent(url.search))) &&
        (!f.method || f.method === method),
    );
    let fault: Fault | undefined;
    if (i >= 0) {
      fault = this.#faults[i] as Fault;
      if (fault.times !== undefined && --fault.times <= 0) this.#faults.splice(i, 1);
    } else if (this.#chaos && !path.startsWith("/v1.0/subscriptions")) {
      const c = this.#chaos;
      if (!c.last && c.rand() < c.rate) {
        const kinds: Fault[] = [
          { status: 429, code: "TooManyRequests", headers: { "retry-after": "0" } },
          { status: 503, code: "ServiceUnavailable", headers: { "retry-after": "0" } },
          { status: 504, code: "GatewayTimeout" },
          { reset: true },
        ];
        fault = kinds[Math.floor(c.rand() * kinds.length)];
      }
      c.last = fault !== undefined;
    }
    if (!fault) return false;
    if ("reset" in fault) req.socket.destroy();
    else if ("malformed" in fault) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"value": [{"id": "x", ');
    } else if ("json" in fault) sendJson(res, 200, fault.json);
    else sendError(res, fault.status, fault.code ?? "generalException", "fault", fault.headers);
    return true;
  }

  // Delta -------------------------------------------------------------------------------------

  #delta<V>(res: ServerResponse, url: URL, prefer: string, spec: DeltaSpec<V>): unknown {
    const q = url.searchParams;
    const model = this.model;
    const skip = q.get("$skiptoken");
    const delta = q.get("$deltatoken");
    let token: Token;
    if (skip !== null || delta !== null) {
      // Options live in the token; repeating them is not how Graph is used.
      if ([...q.keys()].some((k) => k !== "$skiptoken" && k !== "$deltatoken"))
        return sendError(
          res,
          400,
          "BadRequest",
          "Query options must not be repeated with a state token.",
        );
      if (delta === "") {
        // The reset URL of a 410 + Location: a full sync.
        token = { k: spec.kind, s: 0, u: model.seq, i: 0 };
      } else {
        const t = decode((skip ?? delta) as string);
        if (!t || t.k !== spec.kind)
          return sendError(
            res,
            400,
            "syncStateInvalid",
            "The sync state is not valid for this request.",
          );
        if (t.u < model.floor) return this.#expired(res, url);
        token = skip !== null ? t : { ...t, s: t.u, u: model.seq, i: undefined, n: 0 };
        if (t.u > model.seq)
          return sendError(
            res,
            400,
            "syncStateInvalid",
            "The sync state generation is ahead of the mailbox.",
          );
      }
    } else {
      token = { k: spec.kind, s: 0, u: model.seq, i: 0 };
      const sel = q.get("$select");
      if (sel) token.sel = sel;
      if (spec.kind.startsWith("ev:")) {
        const start = Date.parse(q.get("startDateTime") ?? q.get("startdatetime") ?? "");
        const end = Date.parse(q.get("endDateTime") ?? q.get("enddatetime") ?? "");
        if (Number.isNaN(start) || Number.isNaN(end))
          return sendError(
            res,
            400,
            "ErrorInvalidParameter",
            "startDateTime and endDateTime are required.",
          );
        token.w = [start, end];
      }
    }
    const pageSize = Math.min(
      Number(/odata\.maxpagesize=(\d+)/.exec(prefer)?.[1] ?? 10) || 10,
      this.options.maxPageSize ?? 1000,
    );
    const log = spec.store.log;
    let i = token.i ?? spec.store.indexAfter(token.s);
    const n = (token.n ?? 0) + 1;
    // Each item as UTF-8 JSON: full forms come from a cache of each version's bytes.
    const items: Buffer[] = [];
    const removed = (id: string) =>
      Buffer.from(JSON.stringify({ id, "@removed": { reason: "deleted" } }));
    const empty =
      this.options.emptyPageEvery !== undefined && n % this.options.emptyPageEvery === 0;
    const full = token.s === 0;
    while (!empty && i < log.length && items.length < pageSize) {
      const entry = log[i] as { seq: number; id: string };
      if (entry.seq > token.u) break;
      i++;
      if (entry.seq <= token.s || spec.store.lastChange(entry.id, token.u) !== entry.seq) continue;
      const now = spec.view(entry.id, token.u, token);
      if (full) {
        // Nothing before the round: every object in scope is new, none is gone.
        for (const r of now) if (!r.outside) items.push(this.#serialized(spec.kind, r, token.sel));
        continue;
      }
      const before = spec.view(entry.id, token.s, token).filter((r) => !r.outside);
      // Objects that entered the scope after the token and left it again are reported removed
      // too (clients must tolerate deletes of objects they never saw; a crashed round may have).
      const passed = spec.store
        .changesIn(entry.id, token.s, token.u)
        .flatMap((seq) => spec.view(entry.id, seq, token).filter((r) => !r.outside))
        .filter((r) => !before.some((b) => b.id === r.id));
      for (const r of now) {
        if (r.outside) {
          items.push(removed(r.id));
          continue;
        }
        const old = before.find((b) => b.id === r.id);
        const sparse = old && spec.sparse?.(old, r);
        items.push(
          sparse ? Buffer.from(JSON.stringify(sparse)) : this.#serialized(spec.kind, r, token.sel),
        );
      }
      const gone = new Set([...before, ...passed].map((r) => r.id));
      for (const r of now) gone.delete(r.id);
      for (const id of gone) items.push(removed(id));
    }
    const more = i < log.length && (log[i] as { seq: number }).seq <= token.u;
    const origin =
      this.options.linkOrigin ??
      this.url.replace(/\/$/, "").replace(/^http:/, url.protocol === "https:" ? "https:" : "http:");
    const link = (name: string, t: Token) => `${origin}${url.pathname}?${name}=${encode(t)}`;
    const [linkName, linkUrl] =
      more || empty
        ? ["@odata.nextLink", link("$skiptoken", { ...token, i, n })]
        : [
            "@odata.deltaLink",
            link("$deltatoken", { k: token.k, s: 0, u: token.u, sel: token.sel, w: token.w }),
          ];
    // The bytes JSON.stringify of { "@odata.context", value, link } would give, without
    // re-serializing (or re-encoding) the items.
    const context = JSON.stringify(`${this.baseUrl}$metadata#Collection`);
    const parts: Buffer[] = [Buffer.from(`{"@odata.context":${context},"value":[`)];
    items.forEach((item, k) => {
      if (k > 0) parts.push(COMMA);
      parts.push(item);
    });
    parts.push(Buffer.from(`],${JSON.stringify(linkName)}:${JSON.stringify(linkUrl)}}`));
    sendJsonText(res, 200, Buffer.concat(parts));
  }

  /**
   * The UTF-8 JSON of a full item under a scope (`kind`: folder, id form) and `$select`, cached
   * per stored version: a version's bytes never change, and every round re-serves most of them.
   */
  #serialized(kind: string, r: Rendered, sel: string | undefined): Buffer {
    let forms = this.#bytes.get(r.source);
    if (!forms) this.#bytes.set(r.source, (forms = []));
    // Mostly one form per version (one scope, one $select): a scan beats building a key.
    for (const f of forms) if (f.id === r.id && f.sel === sel && f.kind === kind) return f.bytes;
    const bytes = Buffer.from(JSON.stringify(select(r.body, sel)));
    forms.push({ kind, id: r.id, sel, bytes });
    return bytes;
  }

  #expired(res: ServerResponse, url: URL): unknown {
    const mode = this.model.expiredAs;
    if (mode === "location") {
      const reset = `${this.url.replace(/\/$/, "")}${url.pathname}?$deltatoken=`;
      return sendError(res, 410, "SyncStateNotFound", "Synchronization reset.", {
        location: reset,
      });
    }
    if (mode === "syncStateInvalid")
      return sendError(res, 400, "SyncStateInvalid", "The sync state is invalid.");
    const message =
      mode === "resyncRequired"
        ? "The delta token is no longer valid; reset the sync state."
        : "The sync state generation is not found; generation=1;";
    sendError(res, 410, mode, message);
  }

  #foldersSpec(kind: string, store: Versioned<Folder>): DeltaSpec<Folder> {
    return {
      kind,
      store,
      view: (id, seq) => {
        const f = store.at(id, seq);
        return f
          ? [new Rendered(id, f, () => ({ ...f, "@odata.etag": `W/"${f.changeKey}"` }))]
          : [];
      },
    };
  }

  #messagesSpec(folderId: string, immutable: boolean): DeltaSpec<Message> {
    const store = this.model.messages;
    const sparse = this.options.sparse ?? "none";
    return {
      kind: `msg:${folderId}:${immutable ? "i" : "r"}`,
      store,
      view: (id, seq) => {
        const m = store.at(id, seq);
        if (!m || m.parentFolderId !== folderId) return [];
        return [new Rendered(messageId(m, immutable), m, () => renderMessage(m, immutable))];
      },
      sparse:
        sparse === "none"
          ? undefined
          : (before, now) => {
              const changed = ["subject", "isRead", "flag"].filter(
                (k) => JSON.stringify(before.body[k]) !== JSON.stringify(now.body[k]),
              );
              if (sparse === "read" && !(changed.length === 1 && changed[0] === "isRead"))
                return undefined;
              const out: Record<string, unknown> = {
                "@odata.etag": now.body["@odata.etag"],
                id: now.id,
              };
              for (const k of changed) out[k] = now.body[k];
              return out;
            },
    };
  }

  #contactsSpec(folderId: string, key: string): DeltaSpec<Contact> {
    const store = this.model.contacts;
    return {
      kind: `ct:${key}`,
      store,
      view: (id, seq) => {
        const c = store.at(id, seq);
        return c && c.parentFolderId === folderId
          ? [new Rendered(id, c, () => renderContact(c))]
          : [];
      },
    };
  }

  #eventsSpec(calendarId: string) {
    const model = this.model;
    const store = model.events;
    const spec: DeltaSpec<unknown> = {
      kind: `ev:${calendarId}`,
      store: store as Versioned<unknown>,
      view: (id, seq, token) => {
        const record = store.at(id, seq);
        if (!record || record.calendarId !== calendarId) return [];
        const [start, end] = token.w ?? [0, Number.POSITIVE_INFINITY];
        return model.expand(record).map(
          (ev) =>
            new Rendered(
              ev.id,
              record,
              () => renderEvent(ev),
              // Documented: changes to events outside the window come as @removed.
              !(ev.end > start && ev.start < end),
            ),
        );
      },
    };
    return spec;
  }

  #calendars(res: ServerResponse, q: URLSearchParams): void {
    const all = [...this.model.calendars.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    const top = Math.min(Number(q.get("$top") ?? 10) || 10, this.options.maxPageSize ?? 1000);
    const from = Number(q.get("$skip") ?? 0);
    const value = all
      .slice(from, from + top)
      .map((c) => ({ ...c, isDefaultCalendar: c.id === "primary" }));
    const body: Record<string, unknown> = { value };
    if (from + top < all.length)
      body["@odata.nextLink"] = `${this.baseUrl}me/calendars?$top=${top}&$skip=${from + top}`;
    sendJson(res, 200, body);
  }

  // Writes --------------------------------------------------------------------------------------

  /**
   * The documented write surface two-way sync uses: PATCH / DELETE with `If-Match: W/"<changeKey>"`
   * (412 `ErrorIrresolvableConflict` when it changed), `POST .../move`, event creates deduped on
   * `transactionId`, contacts with `singleValueExtendedProperties` and a `$filter` on them. Every
   * write goes through the model, so it shows up in delta, notifications and the etag.
   */
  #write(
    res: ServerResponse,
    p: string,
    method: string,
    text: string,
    q: URLSearchParams,
    ifMatch: string | undefined,
    immutable: boolean,
  ): boolean {
    const model = this.model;
    const notFound = () => {
      sendError(res, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
      return true;
    };
    const conflict = (changeKey: string) => {
      if (ifMatch === undefined || ifMatch === "*" || ifMatch === `W/"${changeKey}"`) return false;
      sendError(
        res,
        412,
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
      );
      return true;
    };
    let body: Record<string, unknown> = {};
    if (text) {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        sendError(res, 400, "BadRequest", "Unable to read JSON request payload.");
        return true;
      }
    }
    const refuse = (allowed: readonly string[]) => {
      const bad = Object.keys(body).find((k) => !allowed.includes(k));
      if (bad === undefined) return false;
      sendError(
        res,
        400,
        "ErrorInvalidPropertyForOperation",
        `The property '${bad}' can't be written by this operation.`,
      );
      return true;
    };
    let m: RegExpExecArray | null;
    // Messages.
    if ((m = /^\/me\/messages\/([^/]+)(\/move)?$/.exec(p))) {
      const id = decodeURIComponent(m[1] as string).split("@")[0] as string;
      const msg = model.messages.get(id);
      if (!msg) return notFound();
      if (m[2] && method === "POST") {
        const dest = (body as { destinationId?: unknown }).destinationId;
        if (typeof dest !== "string" || !model.mailFolders.get(dest)) return notFound();
        model.moveMessage(id, dest);
        sendJson(res, 201, {
          ...renderMessage(model.messages.get(id) as Message, immutable),
          "@odata.context": `${this.baseUrl}$metadata#message`,
        });
        return true;
      }
      if (method === "PATCH") {
        if (refuse(MESSAGE_WRITABLE) || conflict(msg.changeKey)) return true;
        const flag = (body.flag as { flagStatus?: unknown } | undefined)?.flagStatus;
        model.updateMessage(id, {
          isRead: typeof body.isRead === "boolean" ? body.isRead : undefined,
          flagged: flag === undefined ? undefined : flag === "flagged",
        });
        sendJson(res, 200, renderMessage(model.messages.get(id) as Message, immutable));
        return true;
      }
      if (method === "DELETE") {
        if (conflict(msg.changeKey)) return true;
        model.deleteMessage(id);
        res.writeHead(204).end();
        return true;
      }
      return false;
    }
    // Events.
    if ((m = /^\/me\/(?:events|calendar\/events|calendars\/([^/]+)\/events)$/.exec(p))) {
      const calendarId = m[1] === undefined ? "primary" : decodeURIComponent(m[1]);
      if (!model.calendars.has(calendarId)) return notFound();
      if (method === "GET") {
        const found = extendedFilter(q, res);
        if (!found) return true;
        const value = model.events
          .live()
          .filter((e) => e.calendarId === calendarId && e.extended?.[found.id] === found.value)
          .flatMap((e) => model.expand(e).map(renderEvent));
        sendJson(res, 200, { value });
        return true;
      }
      if (method !== "POST") return false;
      if (refuse([...EVENT_WRITABLE, "transactionId", "singleValueExtendedProperties"]))
        return true;
      const txn = typeof body.transactionId === "string" ? body.transactionId : undefined;
      const seen = txn === undefined ? undefined : model.eventByTransaction(txn);
      // Graph's transactionId: a retried create gets the event the first one made.
      const id =
        seen?.id ??
        model.addEvent(
          calendarId,
          String(body.subject ?? ""),
          eventDay(model, body),
          0,
          txn,
          extendedOf(body),
        );
      sendJson(res, 201, {
        ...renderEvent(model.viewEvent(id) as ViewEvent),
        "@odata.context": `${this.baseUrl}$metadata#events/$entity`,
      });
      return true;
    }
    if ((m = /^\/me\/events\/([^/]+)$/.exec(p)) && method !== "GET") {
      const id = decodeURIComponent(m[1] as string);
      const ev = model.viewEvent(id);
      if (!ev) return notFound();
      const [master, occurrence] = id.split("_occ") as [string, string | undefined];
      if (method === "PATCH") {
        if (refuse(EVENT_WRITABLE) || conflict(ev.changeKey)) return true;
        const subject = typeof body.subject === "string" ? body.subject : undefined;
        if (occurrence !== undefined) {
          if (subject !== undefined)
            model.updateEvent(master, { exception: [Number(occurrence), subject] });
        } else {
          model.updateEvent(master, {
            subject,
            day: body.start === undefined ? undefined : eventDay(model, body),
          });
        }
        sendJson(res, 200, renderEvent(model.viewEvent(id) as ViewEvent));
        return true;
      }
      if (method === "DELETE") {
        if (conflict(ev.changeKey)) return true;
        if (occurrence !== undefined) model.updateEvent(master, { cancel: Number(occurrence) });
        else model.deleteEvent(master);
        res.writeHead(204).end();
        return true;
      }
      return false;
    }
    // Contacts.
    if ((m = /^\/me\/(?:contacts|contactFolders\/([^/]+)\/contacts)$/.exec(p))) {
      const folderId = m[1] === undefined ? CONTACTS_ROOT : decodeURIComponent(m[1]);
      if (folderId !== CONTACTS_ROOT && !model.contactFolders.get(folderId)) return notFound();
      if (method === "GET") {
        const found = extendedFilter(q, res);
        if (!found) return true;
        const value = model.contacts
          .live()
          .filter((c) => c.parentFolderId === folderId && c.extended?.[found.id] === found.value)
          .map((c) => select(renderContact(c), q.get("$select") ?? undefined));
        sendJson(res, 200, { value });
        return true;
      }
      if (method !== "POST") return false;
      if (refuse([...CONTACT_WRITABLE, "singleValueExtendedProperties"])) return true;
      const { displayName, singleValueExtendedProperties: _, ...fields } = body;
      const id = model.addContact(String(displayName ?? ""), folderId, {
        fields,
        extended: extendedOf(body),
      });
      sendJson(res, 201, {
        ...renderContact(model.contacts.get(id) as Contact),
        "@odata.context": `${this.baseUrl}$metadata#contacts/$entity`,
      });
      return true;
    }
    if ((m = /^\/me\/contacts\/([^/]+)$/.exec(p)) && method !== "GET") {
      const id = decodeURIComponent(m[1] as string);
      const c = model.contacts.get(id);
      if (!c) return notFound();
      if (method === "PATCH") {
        if (refuse(CONTACT_WRITABLE) || conflict(c.changeKey)) return true;
        const { displayName, ...fields } = body;
        model.updateContact(id, {
          displayName: typeof displayName === "string" ? displayName : undefined,
          fields,
        });
        sendJson(res, 200, renderContact(model.contacts.get(id) as Contact));
        return true;
      }
      if (method === "DELETE") {
        if (conflict(c.changeKey)) return true;
        model.deleteContact(id);
        res.writeHead(204).end();
        return true;
      }
    }
    return false;
  }

  // Subscriptions ------------------------------------------------------------------------------

  async #subscribe(res: ServerResponse, body: string): Promise<void> {
    const req = JSON.parse(body || "{}") as Partial<Subscription> & { changeType?: string };
    if (!req.notificationUrl || !req.resource || !req.changeType || !req.expirationDateTime)
      return sendError(
        res,
        400,
        "InvalidRequest",
        "notificationUrl, resource, changeType and expirationDateTime are required.",
      );
    if (req.clientState && req.clientState.length > 128)
      return sendError(res, 400, "InvalidRequest", "clientState is too long.");
    for (const target of [req.notificationUrl, req.lifecycleNotificationUrl]) {
      if (target && !(await this.#validate(target)))
        return sendError(
          res,
          400,
          "InvalidRequest",
          "Subscription validation request failed. Response must exactly match validationToken query parameter.",
        );
    }
    const max = Date.now() + 4230 * 60_000;
    const sub: Subscription = {
      id: randomUUID(),
      resource: req.resource,
      changeType: req.changeType.split(","),
      notificationUrl: req.notificationUrl,
      lifecycleNotificationUrl: req.lifecycleNotificationUrl,
      clientState: req.clientState,
      expirationDateTime: new Date(Math.min(Date.parse(req.expirationDateTime), max)).toISOString(),
      reauthorized: 0,
    };
    this.subscriptions.set(sub.id, sub);
    sendJson(res, 201, subscriptionJson(sub));
  }

  /** The handshake: POST `?validationToken=…`, expect 200 text/plain with the decoded token within 10 s. */
  async #validate(target: string): Promise<boolean> {
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()} <&>`;
    const url = new URL(target);
    url.searchParams.set("validationToken", token);
    let ok = false;
    try {
      const r = await fetch(url, { method: "POST", signal: AbortSignal.timeout(10_000) });
      const text = await r.text();
      ok =
        r.status === 200 &&
        (r.headers.get("content-type") ?? "").startsWith("text/plain") &&
        text === token;
    } catch {
      ok = false;
    }
    this.validations.push({ url: target, ok });
    return ok;
  }
}

function subscriptionJson(sub: Subscription): Record<string, unknown> {
  return {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
    id: sub.id,
    resource: sub.resource,
    changeType: sub.changeType.join(","),
    notificationUrl: sub.notificationUrl,
    lifecycleNotificationUrl: sub.lifecycleNotificationUrl ?? null,
    expirationDateTime: sub.expirationDateTime,
    clientState: sub.clientState ?? null,
  };
}

/** What PATCH may change here (Graph allows more; the emulator models these). */
const MESSAGE_WRITABLE = ["isRead", "flag"] as const;
const EVENT_WRITABLE = ["subject", "start", "end", "isAllDay"] as const;
const CONTACT_WRITABLE = [
  "displayName",
  "givenName",
  "surname",
  "emailAddresses",
  "businessPhones",
  "homePhones",
  "mobilePhone",
  "companyName",
  "jobTitle",
] as const;

/** The `singleValueExtendedProperties` of a create, as property id → value. */
function extendedOf(body: Record<string, unknown>): Record<string, string> | undefined {
  const list = body.singleValueExtendedProperties as { id: string; value: string }[] | undefined;
  return list && Object.fromEntries(list.map((ep) => [ep.id, ep.value]));
}

/**
 * The one `$filter` the emulator understands, on a named extended property's value (the OData
 * lambda Graph documents for singleValueExtendedProperties); a 400 for any other.
 */
function extendedFilter(
  q: URLSearchParams,
  res: ServerResponse,
): { id: string; value: string } | undefined {
  const f =
    /^singleValueExtendedProperties\/Any\(ep: ?ep\/id eq '([^']+)' and ep\/value eq '((?:[^']|'')*)'\)$/.exec(
      q.get("$filter") ?? "",
    );
  if (!f) {
    sendError(res, 400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported.");
    return undefined;
  }
  return { id: f[1] as string, value: (f[2] as string).replace(/''/g, "'") };
}

/** The model day of an event body's `start` (UTC `dateTimeTimeZone`). */
function eventDay(model: GraphModel, body: Record<string, unknown>): number {
  const start = body.start as { dateTime?: string; timeZone?: string } | undefined;
  const ms = Date.parse(`${start?.dateTime ?? ""}Z`.replace(/ZZ$/, "Z"));
  return Number.isNaN(ms) ? 0 : (ms - model.day0) / 86_400_000;
}

/** Without ImmutableId an Outlook id changes when the message moves. */
const messageId = (m: Message, immutable: boolean) =>
  immutable ? m.id : `${m.id}@${m.parentFolderId}`;

export function renderMessage(m: Message, immutable: boolean): Record<string, unknown> {
  return {
    "@odata.etag": `W/"${m.changeKey}"`,
    id: messageId(m, immutable),
    changeKey: m.changeKey,
    subject: m.subject,
    isRead: m.isRead,
    flag: { flagStatus: m.flagged ? "flagged" : "notFlagged" },
    parentFolderId: m.parentFolderId,
    receivedDateTime: m.receivedDateTime,
    sentDateTime: m.receivedDateTime,
    from: { emailAddress: { name: "Sender", address: "sender@example.com" } },
    toRecipients: [{ emailAddress: { name: "Me", address: "me@example.com" } }],
    ccRecipients: [],
    isDraft: false,
    importance: "normal",
    hasAttachments: false,
    bodyPreview: `Preview of ${m.subject}`,
    conversationId: `conv-${m.id}`,
    internetMessageId: `<${m.id}@example.com>`,
    categories: [],
  };
}

export function renderContact(c: Contact): Record<string, unknown> {
  const shown = {
    "@odata.etag": `W/"${c.changeKey}"`,
    id: c.id,
    changeKey: c.changeKey,
    displayName: c.displayName,
    givenName: c.displayName,
    surname: null,
    emailAddresses: [{ name: c.displayName, address: `${c.displayName}@example.com` }],
    businessPhones: [],
    homePhones: [],
    mobilePhone: null,
    companyName: null,
    jobTitle: null,
    parentFolderId: c.parentFolderId,
  };
  return { ...shown, ...c.fields, displayName: c.displayName };
}

/** `2026-11-20T10:00:00.0000000` in UTC, as Graph writes `dateTimeTimeZone`. */
const graphTime = (ms: number) => ({
  dateTime: new Date(ms).toISOString().replace(/\.\d+Z$/, ".0000000"),
  timeZone: "UTC",
});

export function renderEvent(ev: ViewEvent): Record<string, unknown> {
  return {
    "@odata.etag": `W/"${ev.changeKey}"`,
    id: ev.id,
    changeKey: ev.changeKey,
    subject: ev.subject,
    type: ev.type,
    seriesMasterId: ev.seriesMasterId,
    start: graphTime(ev.start),
    end: graphTime(ev.end),
    isAllDay: false,
    isCancelled: false,
  };
}

const COMMA = Buffer.from(",");

/** The properties each `$select` keeps (parsed once per distinct `$select`). */
const selections = new Map<string, Set<string>>();

function select(body: Record<string, unknown>, sel: string | undefined): Record<string, unknown> {
  if (!sel) return body;
  let keep = selections.get(sel);
  if (!keep) selections.set(sel, (keep = new Set(["id", "@odata.etag", ...sel.split(",")])));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(body)) if (keep.has(k)) out[k] = body[k];
  return out;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

function sendJsonText(
  res: ServerResponse,
  status: number,
  text: string | Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-type": "application/json; odata.metadata=minimal",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(
    res,
    status,
    {
      error: {
        code,
        message,
        innerError: { date: new Date().toISOString(), "request-id": randomUUID() },
      },
    },
    headers,
  );
}
