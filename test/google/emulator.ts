/**
 * An emulator of the documented behaviour of Google Calendar v3, People v1 and Gmail v1 on
 * node:http: sync tokens, paging of configurable size, cancelled entries, token expiry on demand
 * (410 / EXPIRED_SYNC_TOKEN / 404), rate limits, malformed bodies, connection resets,
 * `events.watch` channels that post notifications, and Gmail `users.watch` publishing to
 * Pub/Sub push subscriptions (`emulator-pubsub.ts`).
 *
 * Paths: `/calendar/v3/...`, `/v1/people/me/connections`, `/gmail/v1/users/me/...` (the layout
 * `createGoogleAccount({ baseUrl })` expects).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeToken, encodeToken } from "./emulator-journal.js";
import {
  type CalendarEntry,
  expandSeries,
  GoogleModel,
  type StoredEvent,
  seriesCount,
} from "./emulator-model.js";
import { GmailPushEmulator, type PubSubAnswer } from "./emulator-pubsub.js";

export { GoogleModel } from "./emulator-model.js";

/** A scripted failure for the next matching request(s). */
export type Fault = { path?: RegExp; method?: string; times?: number } & (
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { reset: true }
  | { malformed: true }
  /**
   * The answer each API gives a token it no longer accepts (410 fullSyncRequired, People
   * EXPIRED_SYNC_TOKEN, Gmail 404), to the next list call; spent without effect when that call
   * carries no token.
   */
  | { invalid: true }
);

interface Channel {
  id: string;
  resourceId: string;
  calendarId: string;
  address: string;
  token?: string;
  expiration: number;
  messageNumber: number;
}

export interface EmulatorOptions {
  /** Upper bound on every page, whatever `maxResults` asks (tests use small pages). */
  maxPageSize?: number;
  /** Accepted bearer tokens; empty means no auth check. */
  tokens?: string[];
  /** Google's own cap on channel lifetime. */
  channelTtlMs?: number;
  /** How an expired People sync token is answered: 400 FAILED_PRECONDITION (default) or 410. */
  peopleExpiredStatus?: 400 | 410;
  /** Delay before each response, to model a network round trip (benchmarks). */
  latencyMs?: number;
  /** The account's address (Gmail profile, the `primary` calendar's id). */
  emailAddress?: string;
}

type Query = URLSearchParams;

export class GoogleEmulator {
  model = new GoogleModel();
  readonly requests: { method: string; path: string; query: Query }[] = [];
  readonly channels = new Map<string, Channel>();
  /** The address Gmail reports (`users.getProfile`, push data). */
  readonly emailAddress: string;
  /** Gmail's watch, Pub/Sub topics and push subscriptions, and the deliveries made. */
  gmailPush: GmailPushEmulator;
  options: EmulatorOptions;
  url = "";
  #server: Server;
  #faults: Fault[] = [];
  #chaos: { rand: () => number; rate: number; last: boolean } | undefined;
  #deliveries: Promise<unknown>[] = [];
  #channelSeq = 0;

  private constructor(options: EmulatorOptions) {
    this.options = options;
    this.emailAddress = options.emailAddress ?? "me@example.com";
    this.gmailPush = this.#newGmailPush();
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const run = () => {
          try {
            this.#handle(req, res, Buffer.concat(chunks).toString("utf8"));
          } catch (error) {
            sendError(res, 500, "backendError", String(error));
          }
        };
        if (this.options.latencyMs) setTimeout(run, this.options.latencyMs);
        else run();
      });
    });
    this.#wire();
  }

  static async start(options: EmulatorOptions = {}, port = 0): Promise<GoogleEmulator> {
    const emulator = new GoogleEmulator(options);
    await new Promise<void>((resolve) => emulator.#server.listen(port, "127.0.0.1", resolve));
    emulator.url = `http://127.0.0.1:${(emulator.#server.address() as AddressInfo).port}/`;
    return emulator;
  }

  /** A fresh, empty model on the same server (one per conformance history). */
  reset(): void {
    this.model = new GoogleModel();
    this.#wire();
    this.requests.length = 0;
    this.channels.clear();
    this.gmailPush = this.#newGmailPush();
    this.#faults = [];
    this.#chaos = undefined;
  }

  /** Fails the next matching request(s) as scripted. */
  inject(fault: Fault): void {
    this.#faults.push({ times: 1, ...fault });
  }

  /** Random transient faults (5xx, 429 + Retry-After, 403 usageLimits, resets), never twice in a row. */
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

  /** Waits for the channel deliveries sent so far. */
  async flush(): Promise<void> {
    const pending = this.#deliveries.splice(0);
    await Promise.allSettled(pending);
  }

  async close(): Promise<void> {
    await this.flush();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #newGmailPush(): GmailPushEmulator {
    return new GmailPushEmulator(this.emailAddress, (d) => this.#deliveries.push(d));
  }

  #wire(): void {
    this.model.onMailChange = (entry, labelIds) => this.gmailPush.mailChanged(entry, labelIds);
    this.model.onCalendarChange = (calendarId) => {
      for (const ch of this.channels.values()) {
        if (ch.calendarId === calendarId && ch.expiration > Date.now()) this.#deliver(ch, "exists");
      }
    };
  }

  #deliver(ch: Channel, state: "sync" | "exists"): void {
    const headers: Record<string, string> = {
      "x-goog-channel-id": ch.id,
      "x-goog-message-number": String(ch.messageNumber++),
      "x-goog-resource-id": ch.resourceId,
      "x-goog-resource-state": state,
      "x-goog-resource-uri": `${this.url}calendar/v3/calendars/${ch.calendarId}/events`,
      "x-goog-channel-expiration": new Date(ch.expiration).toUTCString(),
      "user-agent": "APIs-Google",
    };
    if (ch.token !== undefined) headers["x-goog-channel-token"] = ch.token;
    this.#deliveries.push(
      fetch(ch.address, { method: "POST", headers }).then((r) => r.arrayBuffer()),
    );
  }

  #handle(req: IncomingMessage, res: ServerResponse, body: string): unknown {
    const url = new URL(req.url ?? "/", "http://emulator");
    const method = req.method ?? "GET";
    this.requests.push({ method, path: url.pathname, query: url.searchParams });
    if (this.#fault(req, res, url.pathname, method)) return;
    const tokens = this.options.tokens;
    if (tokens?.length && !tokens.some((t) => req.headers.authorization === `Bearer ${t}`)) {
      sendError(res, 401, "authError", "Invalid Credentials", {
        domain: "global",
        location: "Authorization",
      });
      return;
    }
    const p = url.pathname;
    const q = url.searchParams;
    let m: RegExpExecArray | null;
    if ((m = /^\/calendar\/v3\/calendars\/([^/]+)\/events$/.exec(p)) && method === "GET")
      return this.#eventsList(res, decodeURIComponent(m[1] as string), q);
    if ((m = /^\/calendar\/v3\/calendars\/([^/]+)$/.exec(p)) && method === "GET")
      return this.#calendarGet(res, decodeURIComponent(m[1] as string));
    if ((m = /^\/calendar\/v3\/calendars\/([^/]+)\/events\/watch$/.exec(p)) && method === "POST")
      return this.#watch(res, decodeURIComponent(m[1] as string), body);
    if ((m = /^\/calendar\/v3\/calendars\/([^/]+)\/events$/.exec(p)) && method === "POST")
      return this.#eventWrite(req, res, decodeURIComponent(m[1] as string), undefined, body);
    if ((m = /^\/calendar\/v3\/calendars\/([^/]+)\/events\/([^/]+)$/.exec(p))) {
      const calendarId = decodeURIComponent(m[1] as string);
      const id = decodeURIComponent(m[2] as string);
      if (method === "DELETE") return this.#eventDelete(req, res, calendarId, id);
      if (method === "PUT") return this.#eventWrite(req, res, calendarId, id, body);
      if (method === "GET") return this.#eventGet(res, calendarId, id);
    }
    if (p === "/calendar/v3/channels/stop" && method === "POST") return this.#stop(res, body);
    if (p === "/calendar/v3/users/me/calendarList" && method === "GET")
      return this.#calendarList(res, q);
    if ((m = /^\/calendar\/v3\/users\/me\/calendarList\/([^/]+)$/.exec(p)) && method === "GET") {
      const c = this.model.calendarList.get(decodeURIComponent(m[1] as string));
      return c && !c.deleted
        ? sendJson(res, 200, { kind: "calendar#calendarListEntry", ...c })
        : sendError(res, 404, "notFound", "Not Found");
    }
    if (p === "/v1/people/me/connections" && method === "GET") return this.#connections(res, q);
    if ((m = /^\/v1\/(people\/[^/]+)$/.exec(p)) && method === "GET")
      return this.#personGet(res, decodeURIComponent(m[1] as string), q);
    if (p === "/gmail/v1/users/me/profile")
      return sendJson(res, 200, {
        emailAddress: this.emailAddress,
        historyId: String(this.model.seq),
      });
    if (p === "/gmail/v1/users/me/messages") return this.#messagesList(res, q);
    if ((m = /^\/gmail\/v1\/users\/me\/messages\/([^/]+)$/.exec(p))) {
      const msg = this.model.messages.get(decodeURIComponent(m[1] as string));
      return msg
        ? sendJson(res, 200, msg)
        : sendError(res, 404, "notFound", "Requested entity was not found.");
    }
    if (p === "/gmail/v1/users/me/history") return this.#history(res, q);
    if (p === "/gmail/v1/users/me/watch" && method === "POST") {
      const watch = () => answer(res, this.gmailPush.handleWatch(body, String(this.model.seq)));
      // A slow users.watch takes effect late (races with users.stop).
      if (this.gmailPush.watchLatencyMs) setTimeout(watch, this.gmailPush.watchLatencyMs);
      else watch();
      return;
    }
    if (p === "/gmail/v1/users/me/stop" && method === "POST")
      return answer(res, this.gmailPush.handleStop());
    sendError(res, 404, "notFound", `no route ${method} ${p}`);
  }

  #fault(req: IncomingMessage, res: ServerResponse, path: string, method: string): boolean {
    const url = new URL(req.url ?? "/", "http://emulator");
    const i = this.#faults.findIndex(
      (f) =>
        (!f.path || f.path.test(path)) &&
        (!f.method || f.method === method) &&
        (!("invalid" in f) || LIST_PATH.test(path)),
    );
    let fault: Fault | undefined;
    if (i >= 0) {
      fault = this.#faults[i] as Fault;
      if (fault.times !== undefined && --fault.times <= 0) this.#faults.splice(i, 1);
    } else if (this.#chaos) {
      const c = this.#chaos;
      if (!c.last && c.rand() < c.rate) {
        const kinds: Fault[] = [
          { status: 500 },
          { status: 503 },
          { status: 429, headers: { "retry-after": "0" } },
          {
            status: 403,
            body: googleError(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
          },
          { reset: true },
        ];
        fault = kinds[Math.floor(c.rand() * kinds.length)];
      }
      c.last = fault !== undefined;
    }
    if (!fault) return false;
    // A refused token needs a token: a list call without one (a full sync's first page) is
    // answered normally and the fault is spent.
    if ("invalid" in fault && !carriesToken(path, url.searchParams)) return false;
    if ("reset" in fault) {
      req.socket.destroy();
    } else if ("invalid" in fault) {
      if (path.startsWith("/v1/people")) this.#expiredPeople(res);
      else if (path.startsWith("/gmail/"))
        sendError(res, 404, "notFound", "Requested entity was not found.");
      else fullSyncRequired(res);
    } else if ("malformed" in fault) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"items": [{"id": "x", ');
    } else {
      const body =
        fault.body ??
        googleError(
          fault.status,
          fault.status === 429 ? "rateLimitExceeded" : "backendError",
          "fault",
        );
      res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers });
      res.end(JSON.stringify(body));
    }
    return true;
  }

  // Calendar ----------------------------------------------------------------------------------

  #eventsList(res: ServerResponse, calendarId: string, q: Query): unknown {
    const model = this.model;
    const journal = model.calendars.get(calendarId);
    const entry = model.calendarList.get(calendarId);
    if (!journal || entry?.deleted) return sendError(res, 404, "notFound", "Not Found");
    const singleEvents = q.get("singleEvents") === "true";
    // Full syncs omit cancelled events unless showDeleted=true (events.list reference).
    const showDeleted = q.get("showDeleted") === "true";
    const limit = this.#limit(q.get("maxResults"), 250, 2500);
    const syncToken = q.get("syncToken");
    let since = 0;
    if (syncToken !== null) {
      const forbidden = [
        "timeMin",
        "timeMax",
        "orderBy",
        "q",
        "iCalUID",
        "updatedMin",
        "privateExtendedProperty",
        "sharedExtendedProperty",
      ].filter((k) => q.has(k));
      if (forbidden.length || q.get("showDeleted") === "false")
        return sendError(
          res,
          400,
          "invalid",
          `Sync token cannot be used with ${forbidden.join(", ") || "showDeleted=false"}`,
        );
      const tok = decodeToken<{ s: number; c: string; e: string }>("cs", syncToken);
      if (!tok) return sendError(res, 400, "invalid", "Invalid sync token value.");
      // Expired, or never issued for this calendar by this server (another account, a token
      // newer than the server's history after a restore): Google asks for a full sync.
      if (tok.c !== calendarId || !this.#issued(tok) || tok.s < model.floors.calendar)
        return fullSyncRequired(res);
      since = tok.s;
    }
    const window = { min: q.get("timeMin"), max: q.get("timeMax") };
    const paging = this.#paging(q, since, syncToken !== null, model.floors.calendar, "cp");
    if ("error" in paging) return paging.error(res);
    const full = syncToken === null;
    const page = journal.page(paging.after, paging.upto, limit, (event) => {
      const events =
        singleEvents && event.recurrence
          ? expandSeries(event).filter((i) => journal.asOf(i.id, paging.upto) === undefined)
          : [event];
      const out = events.filter(
        (e) =>
          !full || this.#fullVisible(e, journal, paging.upto, singleEvents, showDeleted, window),
      );
      return out.map(serveEvent);
    });
    const result: Record<string, unknown> = {
      kind: "calendar#events",
      summary: calendarId,
      items: page.items,
    };
    if (page.more) result.nextPageToken = paging.nextToken(page.last);
    else
      result.nextSyncToken = encodeToken("cs", { s: paging.upto, c: calendarId, e: model.epoch });
    sendJson(res, 200, result);
  }

  #fullVisible(
    e: StoredEvent,
    journal: { asOf(key: string, seq: number): StoredEvent | undefined },
    upto: number,
    singleEvents: boolean,
    showDeleted: boolean,
    window: { min: string | null; max: string | null },
  ): boolean {
    if (e.status === "cancelled" && !showDeleted) {
      // Cancelled instances of a live series are listed when showDeleted and singleEvents are false.
      if (singleEvents || !e.recurringEventId) return false;
      if (journal.asOf(e.recurringEventId, upto)?.status !== "confirmed") return false;
    }
    const start = Date.parse(e.start?.dateTime ?? e.originalStartTime?.dateTime ?? "");
    let end = Date.parse(e.end?.dateTime ?? "") || start;
    if (!singleEvents && e.recurrence) end += Math.max(0, seriesCount(e) - 1) * 86_400_000;
    if (window.min && !Number.isNaN(end) && end <= Date.parse(window.min)) return false;
    if (window.max && !Number.isNaN(start) && start >= Date.parse(window.max)) return false;
    return true;
  }

  /** calendars.get: the `primary` calendar's id is the account's address. */
  #calendarGet(res: ServerResponse, calendarId: string): unknown {
    const entry = this.model.calendarList.get(calendarId);
    if (!this.model.calendars.has(calendarId) || entry?.deleted)
      return sendError(res, 404, "notFound", "Not Found");
    sendJson(res, 200, {
      kind: "calendar#calendar",
      id: calendarId === "primary" ? this.emailAddress : calendarId,
      summary: entry?.summary ?? calendarId,
    });
  }

  /**
   * events.get: cancelled events too ("the get method always returns them"), and the instances
   * of a series by their instance id.
   */
  #eventGet(res: ServerResponse, calendarId: string, id: string): unknown {
    const journal = this.model.calendars.get(calendarId);
    if (!journal || this.model.calendarList.get(calendarId)?.deleted)
      return sendError(res, 404, "notFound", "Not Found");
    const stored = journal.get(id);
    if (stored) return sendJson(res, 200, serveEvent(stored));
    const m = /^(.+)_(\d+)$/.exec(id);
    const series = m ? journal.get(m[1] as string) : undefined;
    const instance = series?.recurrence ? expandSeries(series)[Number(m?.[2])] : undefined;
    if (instance) return sendJson(res, 200, serveEvent(instance));
    sendError(res, 404, "notFound", "Not Found");
  }

  /**
   * `events.insert` (POST, optional client `id`: base32hex, 5–1024 chars; an existing id is 409
   * duplicate) and `events.update` (PUT, `If-Match` → 412 conditionNotMet when stale).
   */
  #eventWrite(
    req: IncomingMessage,
    res: ServerResponse,
    calendarId: string,
    id: string | undefined,
    body: string,
  ): unknown {
    if (!this.model.calendars.has(calendarId)) return sendError(res, 404, "notFound", "Not Found");
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return sendError(res, 400, "parseError", "Parse Error");
    }
    const insert = id === undefined;
    const eventId = insert ? ((fields.id as string | undefined) ?? this.model.newId("ev")) : id;
    // Google's rule for client-chosen ids (its own ids, like the emulator's `ev1`, are exempt).
    if (insert && fields.id !== undefined && !/^[a-v0-9]{5,1024}$/.test(String(fields.id)))
      return sendError(res, 400, "invalid", "Invalid resource id value.");
    const ifMatch = req.headers["if-match"];
    const outcome = this.model.writeEvent(
      calendarId,
      eventId,
      fields,
      insert ? { insert: true } : { insert: false, ifMatch },
    );
    if (outcome === "duplicate")
      return sendError(res, 409, "duplicate", "The requested identifier already exists.");
    if (outcome === "missing") return sendError(res, 404, "notFound", "Not Found");
    if (outcome === "gone")
      return sendError(res, 410, "deleted", "Resource has been deleted", { domain: "global" });
    if (outcome === "stale")
      return sendError(res, 412, "conditionNotMet", "Precondition Failed", {
        domain: "global",
        location: "If-Match",
      });
    sendJson(res, 200, serveEvent(outcome));
  }

  #eventDelete(req: IncomingMessage, res: ServerResponse, calendarId: string, id: string): unknown {
    const cur = this.model.calendars.get(calendarId)?.get(id);
    const ifMatch = req.headers["if-match"];
    if (cur && cur.status !== "cancelled" && ifMatch !== undefined && ifMatch !== cur.etag)
      return sendError(res, 412, "conditionNotMet", "Precondition Failed", {
        domain: "global",
        location: "If-Match",
      });
    const outcome = this.model.deleteEvent(calendarId, id);
    if (outcome === "missing") return sendError(res, 404, "notFound", "Not Found");
    if (outcome === "gone")
      return sendError(res, 410, "deleted", "Resource has been deleted", { domain: "global" });
    res.writeHead(204).end();
  }

  #calendarList(res: ServerResponse, q: Query): unknown {
    const model = this.model;
    const limit = this.#limit(q.get("maxResults"), 100, 250);
    const syncToken = q.get("syncToken");
    let since = 0;
    if (syncToken !== null) {
      if (
        q.has("minAccessRole") ||
        q.get("showDeleted") === "false" ||
        q.get("showHidden") === "false"
      )
        return sendError(res, 400, "invalid", "Sync token cannot be used with these parameters");
      const tok = decodeToken<{ s: number; e: string }>("ls", syncToken);
      if (!tok) return sendError(res, 400, "invalid", "Invalid sync token value.");
      if (!this.#issued(tok) || tok.s < model.floors.calendarList) return fullSyncRequired(res);
      since = tok.s;
    }
    const paging = this.#paging(q, since, syncToken !== null, model.floors.calendarList, "lp");
    if ("error" in paging) return paging.error(res);
    const showHidden = q.get("showHidden") === "true";
    const page = model.calendarList.page(paging.after, paging.upto, limit, (c: CalendarEntry) => {
      if (syncToken === null && (c.deleted || (c.hidden && !showHidden))) return undefined;
      return [{ kind: "calendar#calendarListEntry", ...c }];
    });
    const result: Record<string, unknown> = { kind: "calendar#calendarList", items: page.items };
    if (page.more) result.nextPageToken = paging.nextToken(page.last);
    else result.nextSyncToken = encodeToken("ls", { s: paging.upto, e: model.epoch });
    sendJson(res, 200, result);
  }

  #watch(res: ServerResponse, calendarId: string, body: string): unknown {
    let req: { id?: string; type?: string; address?: string; token?: string; expiration?: number };
    try {
      req = JSON.parse(body);
    } catch {
      return sendError(res, 400, "parseError", "Parse Error");
    }
    if (!req.id || req.id.length > 64 || req.type !== "web_hook" || !req.address)
      return sendError(res, 400, "required", "id, type=web_hook and address are required");
    if (this.channels.has(req.id))
      return sendError(res, 400, "channelIdNotUnique", "Channel id not unique");
    const cap = Date.now() + (this.options.channelTtlMs ?? 7 * 86_400_000);
    const ch: Channel = {
      id: req.id,
      resourceId: `res-${calendarId}-${++this.#channelSeq}`,
      calendarId,
      address: req.address,
      token: req.token,
      expiration: Math.min(Number(req.expiration ?? cap), cap),
      messageNumber: 1,
    };
    this.channels.set(ch.id, ch);
    this.#deliver(ch, "sync");
    sendJson(res, 200, {
      kind: "api#channel",
      id: ch.id,
      resourceId: ch.resourceId,
      resourceUri: `${this.url}calendar/v3/calendars/${calendarId}/events`,
      token: ch.token,
      expiration: String(ch.expiration),
    });
  }

  #stop(res: ServerResponse, body: string): unknown {
    const req = JSON.parse(body || "{}") as { id?: string; resourceId?: string };
    const ch = req.id ? this.channels.get(req.id) : undefined;
    if (!ch || ch.resourceId !== req.resourceId)
      return sendError(res, 404, "notFound", "Channel not found");
    this.channels.delete(ch.id);
    res.writeHead(204).end();
  }

  // People ------------------------------------------------------------------------------------

  #connections(res: ServerResponse, q: Query): unknown {
    const model = this.model;
    if (!q.get("personFields"))
      return sendError(
        res,
        400,
        "badRequest",
        "personFields mask is required",
        {},
        "INVALID_ARGUMENT",
      );
    const limit = this.#limit(q.get("pageSize"), 100, 1000);
    const syncToken = q.get("syncToken");
    let since = 0;
    if (syncToken !== null) {
      const tok = decodeToken<{ s: number; e: string }>("ps", syncToken);
      if (!tok)
        return sendError(res, 400, "badRequest", "Invalid sync token", {}, "INVALID_ARGUMENT");
      if (!this.#issued(tok) || tok.s < model.floors.people) return this.#expiredPeople(res);
      since = tok.s;
    }
    const paging = this.#paging(q, since, syncToken !== null, model.floors.people, "pp");
    if ("error" in paging) return this.#expiredPeople(res);
    const page = model.people.page(paging.after, paging.upto, limit, (p) =>
      syncToken === null && p.metadata?.deleted ? undefined : [p],
    );
    const result: Record<string, unknown> = { totalItems: model.livePeople().length };
    // Like Google, an empty page has no `connections` field at all.
    if (page.items.length) result.connections = page.items;
    if (page.more) result.nextPageToken = paging.nextToken(page.last);
    else if (q.get("requestSyncToken") === "true")
      result.nextSyncToken = encodeToken("ps", { s: paging.upto, e: model.epoch });
    sendJson(res, 200, result);
  }

  /** people.get: `people/me` is the account's own profile; a deleted contact is 404. */
  #personGet(res: ServerResponse, resourceName: string, q: Query): unknown {
    if (!q.get("personFields"))
      return sendError(
        res,
        400,
        "badRequest",
        "personFields mask is required",
        {},
        "INVALID_ARGUMENT",
      );
    if (resourceName === "people/me") {
      return sendJson(res, 200, {
        resourceName: `people/${accountNumber(this.emailAddress)}`,
        etag: "%me",
        emailAddresses: [{ value: this.emailAddress }],
      });
    }
    const person = this.model.people.get(resourceName);
    if (!person || person.metadata?.deleted)
      return sendError(res, 404, "notFound", "Requested entity was not found.", {}, "NOT_FOUND");
    sendJson(res, 200, person);
  }

  #expiredPeople(res: ServerResponse): void {
    const status = this.options.peopleExpiredStatus ?? 400;
    sendJson(res, status, {
      error: {
        code: status,
        message: "Sync token is expired. Clear local cache and retry call without the sync token.",
        status: status === 400 ? "FAILED_PRECONDITION" : "GONE",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "EXPIRED_SYNC_TOKEN",
            domain: "people.googleapis.com",
          },
        ],
      },
    });
  }

  // Gmail -------------------------------------------------------------------------------------

  #messagesList(res: ServerResponse, q: Query): unknown {
    const model = this.model;
    const limit = this.#limit(q.get("maxResults"), 100, 500);
    const token = q.get("pageToken");
    const tok = token
      ? decodeToken<{ u: number; o: number; e: string }>("mp", token)
      : { u: model.seq, o: 0, e: model.epoch };
    if (!tok || tok.e !== model.epoch || tok.u > model.seq)
      return sendError(res, 400, "invalidArgument", "Invalid pageToken");
    const days = /newer_than:(\d+)d/.exec(q.get("q") ?? "");
    const cutoff = days ? Date.now() - Number(days[1]) * 86_400_000 : 0;
    const spam = q.get("includeSpamTrash") === "true";
    // The listing is a snapshot as of the first page, so its pages are repeatable.
    const all = [...model.messages.keys()]
      .map((k) => model.messages.asOf(k, tok.u))
      .filter(
        (m) =>
          m &&
          Number(m.internalDate) >= cutoff &&
          (spam || !m.labelIds.some((l) => l === "TRASH" || l === "SPAM")),
      )
      .map((m) => m as NonNullable<typeof m>)
      .sort((a, b) => Number(b.internalDate) - Number(a.internalDate) || (a.id < b.id ? 1 : -1));
    const slice = all.slice(tok.o, tok.o + limit);
    const result: Record<string, unknown> = { resultSizeEstimate: all.length };
    if (slice.length) result.messages = slice.map((m) => ({ id: m.id, threadId: m.threadId }));
    if (tok.o + limit < all.length)
      result.nextPageToken = encodeToken("mp", { u: tok.u, o: tok.o + limit, e: model.epoch });
    sendJson(res, 200, result);
  }

  #history(res: ServerResponse, q: Query): unknown {
    const model = this.model;
    const start = Number(q.get("startHistoryId"));
    if (!q.get("startHistoryId") || Number.isNaN(start))
      return sendError(res, 400, "invalidArgument", "startHistoryId is required");
    // Too old, or newer than the mailbox's history (a historyId this mailbox never reported).
    if (start < model.floors.gmail || start > model.seq)
      return sendError(res, 404, "notFound", "Requested entity was not found.");
    const limit = this.#limit(q.get("maxResults"), 100, 500);
    const token = q.get("pageToken");
    const tok = token
      ? decodeToken<{ s: number; u: number; a: number; e: string }>("hp", token)
      : { s: start, u: model.seq, a: start, e: model.epoch };
    if (!tok || tok.s !== start || tok.e !== model.epoch || tok.u > model.seq)
      return sendError(res, 400, "invalidArgument", "Invalid pageToken");
    const types = new Set(q.getAll("historyTypes"));
    const records: unknown[] = [];
    let last = tok.a;
    let i = model.history.findIndex((h) => h.id > tok.a);
    if (i < 0) i = model.history.length;
    for (; i < model.history.length && records.length < limit; i++) {
      const h = model.history[i] as (typeof model.history)[number];
      if (h.id > tok.u) break;
      last = h.id;
      if (types.size && !types.has(h.kind)) continue;
      const message = { id: h.messageId, threadId: h.threadId };
      const rec: Record<string, unknown> = { id: String(h.id), messages: [message] };
      if (h.kind === "messageAdded") rec.messagesAdded = [{ message }];
      else if (h.kind === "messageDeleted") rec.messagesDeleted = [{ message }];
      else
        rec[h.kind === "labelAdded" ? "labelsAdded" : "labelsRemoved"] = [
          { message, labelIds: h.labelIds },
        ];
      records.push(rec);
    }
    const more = i < model.history.length && (model.history[i] as { id: number }).id <= tok.u;
    const result: Record<string, unknown> = { historyId: String(tok.u) };
    if (records.length) result.history = records;
    if (more)
      result.nextPageToken = encodeToken("hp", { s: start, u: tok.u, a: last, e: model.epoch });
    sendJson(res, 200, result);
  }

  // Shared ------------------------------------------------------------------------------------

  /** A token this model issued: same history, not ahead of it. */
  #issued(tok: { s: number; e?: string }): boolean {
    return tok.e === this.model.epoch && tok.s <= this.model.seq;
  }

  #limit(value: string | null, fallback: number, cap: number): number {
    const n = value ? Number(value) : fallback;
    return Math.max(1, Math.min(n || fallback, cap, this.options.maxPageSize ?? cap));
  }

  /** Reads the page token; it must come with exactly the query that produced it. */
  #paging(
    q: Query,
    since: number,
    incremental: boolean,
    floor: number,
    tag: string,
  ):
    | { after: number; upto: number; nextToken: (last: number) => string }
    | { error: (res: ServerResponse) => void } {
    const rest = [...q.entries()].filter(([k]) => k !== "pageToken").sort();
    const hash = JSON.stringify(rest);
    const token = q.get("pageToken");
    // The next page's token carries the round's start, snapshot, position and parameters.
    const paged = (after: number, upto: number) => ({
      after,
      upto,
      nextToken: (last: number) =>
        encodeToken(tag, { s: since, u: upto, a: last, q: hash, e: this.model.epoch }),
    });
    if (token === null) return paged(since, this.model.seq);
    const tok = decodeToken<{ s: number; u: number; a: number; q: string; e: string }>(tag, token);
    if (tok && (tok.e !== this.model.epoch || tok.u > this.model.seq))
      return { error: tag === "pp" ? (res) => this.#expiredPeople(res) : fullSyncRequired };
    if (!tok || tok.s !== since || tok.q !== hash)
      return {
        error: (res) => sendError(res, 400, "invalid", "Invalid page token or changed parameters"),
      };
    if (incremental && since < floor) return { error: fullSyncRequired };
    return paged(tok.a, tok.u);
  }
}

/** A stable, digits-only account number (People's `people/<number>`). */
function accountNumber(email: string): string {
  let h = 7;
  for (const ch of email) h = (h * 31 + (ch.codePointAt(0) as number)) % 1_000_000_007;
  return `1${h}`;
}

function serveEvent(e: StoredEvent): Record<string, unknown> {
  if (e.status === "cancelled") {
    // A deleted event is only guaranteed to carry its id (and, for exceptions, the series).
    const out: Record<string, unknown> = {
      kind: "calendar#event",
      id: e.id,
      status: "cancelled",
      etag: e.etag,
    };
    if (e.recurringEventId) {
      out.recurringEventId = e.recurringEventId;
      out.originalStartTime = e.originalStartTime;
    }
    return out;
  }
  return { kind: "calendar#event", ...e };
}

export function googleError(
  code: number,
  reason: string,
  message: string,
  domain = "global",
  location?: string,
): unknown {
  return {
    error: {
      code,
      message,
      errors: [{ domain, reason, message, ...(location ? { location } : {}) }],
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=UTF-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  reason: string,
  message: string,
  extra: { domain?: string; location?: string } = {},
  rpcStatus?: string,
): void {
  const body = googleError(status, reason, message, extra.domain ?? "global", extra.location) as {
    error: Record<string, unknown>;
  };
  if (rpcStatus) body.error.status = rpcStatus;
  sendJson(res, status, body);
}

function answer(res: ServerResponse, a: PubSubAnswer): void {
  if ("error" in a) sendError(res, a.status, a.error.reason, a.error.message);
  else if (a.json === undefined) res.writeHead(a.status).end();
  else sendJson(res, a.status, a.json);
}

/** The list calls of every API (where sync and page tokens go). */
const LIST_PATH =
  /^\/(calendar\/v3\/calendars\/[^/]+\/events|calendar\/v3\/users\/me\/calendarList|v1\/people\/me\/connections|gmail\/v1\/users\/me\/(history|messages))$/;

/**
 * A list call whose token the server could refuse: a sync or page token, or Gmail's
 * `startHistoryId` (a Gmail listing's page token has no "start over" answer).
 */
function carriesToken(path: string, q: Query): boolean {
  if (path === "/gmail/v1/users/me/history") return true;
  if (path.startsWith("/gmail/")) return false;
  return q.has("syncToken") || q.has("pageToken");
}

function fullSyncRequired(res: ServerResponse): void {
  sendError(
    res,
    410,
    "fullSyncRequired",
    "Sync token is no longer valid, a full sync is required.",
    {
      domain: "calendar",
      location: "syncToken",
    },
  );
}
