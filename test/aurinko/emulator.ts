/**
 * An emulator of Aurinko's documented sync and webhook behaviour on node:http (PROTOCOLS.md §7,
 * Aurinko's OpenAPI): `POST …/sync` with `ready: false` on demand, the updated and deleted
 * streams with their own delta tokens, paging with page tokens (a page token sent as
 * `deltaToken` is refused), 410 `syncToken.expired` / 400 `token.notValid`, throttling and
 * faults, GET by id, the calendar and task lists, and subscriptions with the `validationToken`
 * handshake, signed deliveries and lifecycle events.
 *
 * One server hosts several accounts, chosen by the bearer token.
 */
import { createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AurinkoModel, type ChangeType, type StoredRecord } from "./emulator-model.js";

export { AurinkoModel } from "./emulator-model.js";

/** A scripted failure for the next matching request(s). */
export type Fault = { path?: RegExp; method?: string; times?: number } & (
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { reset: true }
);

export interface EmulatorOptions {
  /** Records per stream page. */
  pageSize?: number;
  /** The app's signing secret for deliveries. */
  signingSecret?: string;
  /** Failed deliveries after which a subscription turns `active: false`. */
  maxDeliveryFailures?: number;
}

interface Subscription {
  id: string;
  token: string;
  resource: string;
  collection: string;
  notificationUrl: string;
  active: boolean;
  failures: number;
}

interface TokenBody {
  /** account */
  a: string;
  /** generation */
  g: number;
  /** collection */
  c: string;
  /** stream */
  k: "u" | "d";
  /** changes after this seq */
  s: number;
  /** the initial load (window applies) */
  i?: true;
  w?: { daysWithin?: number; timeMin?: string; timeMax?: string };
  /** page token */
  p?: true;
}

export interface RequestLog {
  method: string;
  path: string;
  query: URLSearchParams;
  token: string;
}

export class AurinkoEmulator {
  /** The accounts, by bearer token. */
  readonly accounts = new Map<string, AurinkoModel>();
  readonly requests: RequestLog[] = [];
  readonly subscriptions = new Map<string, Subscription>();
  /** Deliveries posted: status answered by the receiver. */
  readonly deliveries: { subscription: string; status: number; body: string }[] = [];
  options: Required<EmulatorOptions>;
  url = "";
  /** The next N `POST …/sync` answer `ready: false`. */
  notReady = 0;
  /** Requests to matching paths are answered this much later. */
  slow: { path: RegExp; ms: number } | undefined;
  /** A one-shot fault for the next sync request (see `faultNextSync`). */
  #nextSync: "invalid" | "transient" | undefined;
  #server: Server;
  #faults: Fault[] = [];
  #chaos: { rand: () => number; rate: number; last: boolean } | undefined;
  #pending: Promise<unknown>[] = [];
  #subSeq = 0;

  private constructor(options: EmulatorOptions) {
    this.options = {
      pageSize: options.pageSize ?? 3,
      signingSecret: options.signingSecret ?? "test-signing-secret",
      maxDeliveryFailures: options.maxDeliveryFailures ?? 3,
    };
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.#handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((error) =>
          send(res, 500, { code: "internal", message: String(error) }),
        );
      });
    });
  }

  static async start(options: EmulatorOptions = {}): Promise<AurinkoEmulator> {
    const emulator = new AurinkoEmulator(options);
    await new Promise<void>((resolve) => emulator.#server.listen(0, "127.0.0.1", resolve));
    emulator.url = `http://127.0.0.1:${(emulator.#server.address() as AddressInfo).port}/v1/`;
    emulator.reset();
    return emulator;
  }

  /** The account of a bearer token (created on first use). */
  account(token: string): AurinkoModel {
    let model = this.accounts.get(token);
    if (!model) {
      model = new AurinkoModel(`acct-${randomUUID().slice(0, 8)}`);
      model.onChange = (collection, id, type) => this.#notify(token, collection, id, type);
      this.accounts.set(token, model);
    }
    return model;
  }

  /** Forgets every account, subscription, fault and log. */
  reset(): void {
    this.accounts.clear();
    this.requests.length = 0;
    this.subscriptions.clear();
    this.deliveries.length = 0;
    this.#faults = [];
    this.#chaos = undefined;
    this.notReady = 0;
    this.#nextSync = undefined;
    this.slow = undefined;
  }

  /**
   * Fails the next sync request once (any request but `GET /account`): `invalid` answers a
   * stream 410 syncToken.expired (lists and `POST …/sync` have no token: it is spent on them
   * without effect), `transient` answers 503.
   */
  faultNextSync(kind: "invalid" | "transient"): void {
    this.#nextSync = kind;
  }

  inject(fault: Fault): void {
    this.#faults.push({ times: 1, ...fault });
  }

  /** Random 429 + Retry-After / 408 / 503 / connection resets, never twice in a row. */
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

  /** Waits for the deliveries posted so far. */
  async flush(): Promise<void> {
    while (this.#pending.length) await Promise.allSettled(this.#pending.splice(0));
  }

  async close(): Promise<void> {
    await this.flush();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Sends a lifecycle event (`error`, `active`) for a subscription. */
  lifecycle(subscriptionId: string, event: string): void {
    const sub = this.subscriptions.get(subscriptionId);
    if (!sub) throw new Error(`no subscription ${subscriptionId}`);
    const model = this.account(sub.token);
    this.#deliver(sub, {
      subscription: sub.id,
      resource: sub.resource,
      accountId: model.accountId,
      lifecycleEvent: event,
      ...(event === "error" ? { error: "delivery failures" } : {}),
    });
  }

  /** A delivery signed with the app's secret, as Aurinko posts it. */
  signed(body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
    const signature = createHmac("sha256", this.options.signingSecret)
      .update(`v0:${timestamp}:${body}`)
      .digest("hex");
    return {
      "content-type": "application/json",
      "x-aurinko-request-timestamp": String(timestamp),
      "x-aurinko-signature": signature,
    };
  }

  #notify(token: string, collection: string, id: string, type: ChangeType): void {
    for (const sub of this.subscriptions.values()) {
      if (sub.token !== token || sub.collection !== collection || !sub.active) continue;
      this.#deliver(sub, {
        subscription: sub.id,
        resource: sub.resource,
        accountId: this.account(token).accountId,
        payloads: [{ id, changeType: type, attributes: {} }],
      });
    }
  }

  #deliver(sub: Subscription, payload: unknown): void {
    const body = JSON.stringify(payload);
    const p = fetch(sub.notificationUrl, { method: "POST", headers: this.signed(body), body })
      .then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      })
      .catch(() => 0)
      .then((status) => {
        this.deliveries.push({ subscription: sub.id, status, body });
        if (status === 200) sub.failures = 0;
        else if (++sub.failures >= this.options.maxDeliveryFailures) sub.active = false;
      });
    this.#pending.push(p);
  }

  async #handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<unknown> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    this.requests.push({ method, path: url.pathname, query: url.searchParams, token });
    if (this.slow?.path.test(url.pathname)) {
      await new Promise((r) => setTimeout(r, this.slow?.ms));
    }
    if (this.#fault(req, res, url, method)) return;
    if (this.#nextSync && !url.pathname.endsWith("/account")) {
      const kind = this.#nextSync;
      this.#nextSync = undefined;
      if (kind === "transient") {
        res.setHeader("retry-after", "0");
        return send(res, 503, { code: "unavailable", message: "injected" });
      }
      if (/\/sync\/(updated|deleted)$/.test(url.pathname)) {
        return send(res, 410, { code: "syncToken.expired", message: "injected", requestId: "r" });
      }
    }
    if (!token) return send(res, 401, { code: "unauthorized", message: "no token" });
    const model = this.account(token);
    const path = url.pathname.replace(/^\/v1\//, "");
    const q = url.searchParams;
    let m: RegExpMatchArray | null;

    if (method === "GET" && path === "account") {
      return send(res, 200, {
        id: model.accountId,
        serviceType: "Google",
        email: "me@example.com",
      });
    }
    if (method === "GET" && (path === "calendars" || path === "tasklists")) {
      const list =
        path === "calendars" ? [...model.calendars.values()] : [...model.tasklists.values()];
      const offset = Number(q.get("pageToken") ?? 0);
      const end = offset + this.options.pageSize;
      return send(res, 200, {
        records: list.slice(offset, end),
        ...(end < list.length ? { nextPageToken: String(end) } : {}),
      });
    }
    if (
      (m = path.match(
        /^(email|contacts|calendars\/[^/]+|tasklists\/[^/]+)\/sync(?:\/(updated|deleted))?$/,
      ))
    ) {
      const collection = decodeURIComponent(m[1] as string);
      if (!model.collections.has(collection)) {
        return send(res, 404, { code: "notFound", message: `no ${collection}` });
      }
      if (!m[2] && method === "POST") return this.#start(res, model, collection, q);
      if (m[2] && method === "GET") {
        return this.#stream(res, model, collection, m[2] === "updated" ? "u" : "d", q);
      }
    }
    const written = this.#write(res, model, method, path, body, req.headers["if-match"]);
    if (written !== undefined) return written;
    if (method === "GET") {
      const item = itemOf(path);
      if (item) {
        const r = model.collections.get(item.collection)?.get(item.id);
        if (!r || r.deleted) return send(res, 404, { code: "notFound", message: "no such item" });
        return send(res, 200, r.data);
      }
    }
    if (path === "subscriptions" && method === "POST") {
      return this.#subscribe(res, token, body);
    }
    if ((m = path.match(/^subscriptions\/([^/]+)$/))) {
      const sub = this.subscriptions.get(decodeURIComponent(m[1] as string));
      if (!sub || sub.token !== token) return send(res, 404, { code: "notFound", message: "" });
      if (method === "GET") return send(res, 200, publicSub(sub));
      if (method === "DELETE") {
        this.subscriptions.delete(sub.id);
        res.statusCode = 200;
        return void res.end();
      }
    }
    send(res, 404, { code: "notFound", message: `${method} ${url.pathname}` });
  }

  /**
   * The documented writes (PROTOCOLS.md §7): `POST` a collection creates (201 `{id, etag,
   * record}`, the id chosen by the server), `PATCH` / `DELETE` an item, with `If-Match` → 412
   * when the etag moved on (events, contacts, tasks); `POST email/messages/{id}/status`
   * `{unread, keywords}` and `DELETE email/messages/{id}` (moves to Trash; a message already in
   * Trash is deleted for good). Every write goes through the model: the streams report it.
   * `undefined` when the request is not a write.
   */
  #write(
    res: ServerResponse,
    model: AurinkoModel,
    method: string,
    path: string,
    body: string,
    ifMatch: string | undefined,
  ): true | undefined {
    const json = (): Record<string, unknown> | undefined => {
      try {
        const v = JSON.parse(body) as unknown;
        return v && typeof v === "object" && !Array.isArray(v)
          ? (v as Record<string, unknown>)
          : undefined;
      } catch {
        return undefined;
      }
    };
    const answer = (code: number, payload: unknown): true => {
      send(res, code, payload);
      return true;
    };
    const bad = (message: string) => answer(400, { code: "badRequest", message });
    const status = path.match(/^email\/messages\/([^/]+)\/status$/);
    if (status && method === "POST") {
      const id = decodeURIComponent(status[1] as string);
      const r = model.collections.get("email")?.get(id);
      if (!r || r.deleted) return answer(404, { code: "notFound", message: id });
      const patch = json();
      if (!patch) return bad("not JSON");
      const labels = new Set((r.data.sysLabels as string[] | undefined) ?? []);
      if (typeof patch.unread === "boolean") {
        if (patch.unread) labels.add("unread");
        else labels.delete("unread");
      }
      const next: Record<string, unknown> = { sysLabels: [...labels] };
      if (Array.isArray(patch.keywords)) next.keywords = patch.keywords;
      model.update("email", id, next);
      res.statusCode = 200;
      res.end();
      return true;
    }
    if (method === "POST" || method === "PATCH" || method === "DELETE") {
      const target: { collection: string; id?: string } | undefined =
        itemOf(path) ?? collectionPathOf(path);
      if (!target) return undefined;
      const coll = model.collections.get(target.collection);
      if (!coll) return answer(404, { code: "notFound", message: target.collection });
      if (method === "POST" && target.id === undefined) {
        if (target.collection === "email") return undefined;
        const data = json();
        if (!data) return bad("not JSON");
        const { id: _id, etag: _etag, ...fields } = data;
        const id = model.insert(target.collection, fields);
        const r = coll.get(id) as StoredRecord;
        send(res, 201, { id, etag: r.data.etag, record: r.data });
        return true;
      }
      if (target.id === undefined) return undefined;
      const r = coll.get(target.id);
      if (!r || r.deleted) return answer(404, { code: "notFound", message: target.id });
      if (ifMatch !== undefined && ifMatch !== r.data.etag) {
        send(res, 412, { code: "preconditionFailed", message: "etag mismatch" });
        return true;
      }
      if (method === "DELETE") {
        const labels = (r.data.sysLabels as string[] | undefined) ?? [];
        if (target.collection === "email" && !labels.includes("trash")) {
          const rest = labels.filter((l) => l !== "inbox");
          model.update("email", target.id, { folderId: "trash", sysLabels: [...rest, "trash"] });
        } else model.remove(target.collection, target.id);
        res.statusCode = 200;
        res.end();
        return true;
      }
      if (method === "PATCH" && target.collection !== "email") {
        const data = json();
        if (!data) return bad("not JSON");
        const { id: _id, etag: _etag, ...fields } = data;
        model.update(target.collection, target.id, fields);
        send(res, 200, coll.get(target.id)?.data);
        return true;
      }
    }
    return undefined;
  }

  #fault(req: IncomingMessage, res: ServerResponse, url: URL, method: string): boolean {
    const i = this.#faults.findIndex(
      (f) => (!f.path || f.path.test(url.pathname)) && (!f.method || f.method === method),
    );
    const fault = i >= 0 ? this.#faults[i] : undefined;
    if (fault) {
      if (fault.times !== undefined && --fault.times <= 0) this.#faults.splice(i, 1);
      if ("reset" in fault) {
        req.socket.destroy();
        return true;
      }
      for (const [k, v] of Object.entries(fault.headers ?? {})) res.setHeader(k, v);
      send(res, fault.status, fault.body ?? { code: "fault", message: "injected" });
      return true;
    }
    // Chaos only where a client may retry: reads and starting a sync.
    const retryable = method === "GET" || /\/sync$/.test(url.pathname);
    if (this.#chaos && retryable && !url.pathname.endsWith("/account")) {
      const c = this.#chaos;
      if (!c.last && c.rand() < c.rate) {
        c.last = true;
        const pick = c.rand();
        if (pick < 0.25) req.socket.destroy();
        else if (pick < 0.5) {
          res.setHeader("retry-after", "0");
          send(res, 429, { code: "tooManyRequests", message: "slow down" });
        } else if (pick < 0.75) send(res, 408, { code: "timeout", message: "" });
        else send(res, 503, { code: "unavailable", message: "" });
        return true;
      }
      c.last = false;
    }
    return false;
  }

  #start(
    res: ServerResponse,
    model: AurinkoModel,
    collection: string,
    q: URLSearchParams,
  ): unknown {
    if (this.notReady > 0) {
      this.notReady--;
      return send(res, 200, { ready: false });
    }
    const w: TokenBody["w"] = {};
    const days = q.get("daysWithin");
    if (days !== null) w.daysWithin = Number(days);
    for (const k of ["timeMin", "timeMax"] as const) {
      const v = q.get(k);
      if (v !== null) w[k] = v;
    }
    const base = { a: model.accountId, g: model.generation, c: collection };
    send(res, 200, {
      ready: true,
      syncUpdatedToken: encode({ ...base, k: "u", s: 0, i: true, w }),
      syncDeletedToken: encode({ ...base, k: "d", s: model.seq }),
    });
  }

  #stream(
    res: ServerResponse,
    model: AurinkoModel,
    collection: string,
    k: "u" | "d",
    q: URLSearchParams,
  ): unknown {
    const delta = q.get("deltaToken");
    const page = q.get("pageToken");
    const invalid = (message: string) =>
      send(res, 400, { code: "token.notValid", message, requestId: "r" });
    if ((delta === null) === (page === null)) return invalid("give deltaToken or pageToken");
    const t = decode((delta ?? page) as string);
    if (!t) return invalid("Token is invalid");
    // A page token sent as deltaToken (or the reverse) is not a token of that kind.
    if (Boolean(t.p) !== (page !== null)) return invalid("Token is invalid");
    if (t.a !== model.accountId || t.c !== collection || t.k !== k)
      return invalid("Token is invalid");
    if (t.s > model.seq) return invalid("Token is invalid");
    if (t.g < model.generation) {
      if (t.p) return invalid("Page token is invalid");
      return send(res, 410, {
        code: "syncToken.expired",
        message: "Sync token expired",
        requestId: "r",
      });
    }
    // Pages continue after the last record served, up to the current head: a page token read
    // later (a resumed round) also lists what changed since the round began.
    const head = model.seq;
    const candidates = [...(model.collections.get(collection)?.values() ?? [])]
      .filter((r) => r.seq > t.s && r.seq <= head && r.deleted === (k === "d"))
      .sort((a, b) => a.seq - b.seq);
    // The window is checked only until one record past the page is found: a full load of N
    // records in pages of P costs O(N log N) per page here, not N window checks (the benchmark
    // measured this emulator more than the clients).
    const records: StoredRecord[] = [];
    for (const r of candidates) {
      if (t.i && !inWindow(r, t.w)) continue;
      records.push(r);
      if (records.length > this.options.pageSize) break;
    }
    const slice = records.slice(0, this.options.pageSize);
    const out = slice.map((r) =>
      k === "u" ? r.data : { id: r.id, timestamp: new Date(0).toISOString() },
    );
    const base = { a: t.a, g: t.g, c: t.c, k };
    if (records.length > slice.length) {
      const last = (slice[slice.length - 1] as StoredRecord).seq;
      const next = encode({
        ...base,
        p: true,
        s: last,
        ...(t.i ? { i: true, w: t.w } : {}),
      });
      return send(res, 200, { records: out, nextPageToken: next, length: out.length });
    }
    send(res, 200, {
      records: out,
      nextDeltaToken: encode({ ...base, s: head }),
      length: out.length,
    });
  }

  async #subscribe(res: ServerResponse, token: string, body: string): Promise<unknown> {
    let json: { resource?: unknown; notificationUrl?: unknown };
    try {
      json = JSON.parse(body);
    } catch {
      return send(res, 400, { code: "badRequest", message: "not JSON" });
    }
    const { resource, notificationUrl } = json;
    if (typeof resource !== "string" || typeof notificationUrl !== "string") {
      return send(res, 400, { code: "badRequest", message: "resource and notificationUrl" });
    }
    const collection = collectionOf(resource);
    if (!collection) return send(res, 400, { code: "badRequest", message: `resource ${resource}` });
    // The handshake: the URL must echo the validation token.
    const validationToken = randomUUID();
    const u = new URL(notificationUrl);
    u.searchParams.set("validationToken", validationToken);
    const echoed = await fetch(u, { method: "POST" })
      .then(async (r) => (r.status === 200 ? await r.text() : undefined))
      .catch(() => undefined);
    if (echoed !== validationToken) {
      return send(res, 400, {
        code: "validation.failed",
        message: "notificationUrl validation failed",
      });
    }
    const sub: Subscription = {
      id: String(++this.#subSeq),
      token,
      resource,
      collection,
      notificationUrl,
      active: true,
      failures: 0,
    };
    this.subscriptions.set(sub.id, sub);
    send(res, 200, publicSub(sub));
  }
}

function publicSub(sub: Subscription) {
  return {
    id: sub.id,
    resource: sub.resource,
    notificationUrl: sub.notificationUrl,
    active: sub.active,
  };
}

function collectionOf(resource: string): string | undefined {
  if (resource === "/email/messages") return "email";
  if (resource === "/contacts") return "contacts";
  const m = resource.match(/^\/(calendars)\/([^/]+)\/events$|^\/(tasklists)\/([^/]+)\/tasks$/);
  if (!m) return undefined;
  return m[1]
    ? `calendars/${decodeURIComponent(m[2] as string)}`
    : `tasklists/${decodeURIComponent(m[4] as string)}`;
}

function itemOf(path: string): { collection: string; id: string } | undefined {
  let m = path.match(/^email\/messages\/([^/]+)$/);
  if (m) return { collection: "email", id: decodeURIComponent(m[1] as string) };
  m = path.match(/^contacts\/([^/]+)$/);
  if (m) return { collection: "contacts", id: decodeURIComponent(m[1] as string) };
  m = path.match(/^calendars\/([^/]+)\/events\/([^/]+)$/);
  if (m)
    return {
      collection: `calendars/${decodeURIComponent(m[1] as string)}`,
      id: decodeURIComponent(m[2] as string),
    };
  m = path.match(/^tasklists\/([^/]+)\/tasks\/([^/]+)$/);
  if (m)
    return {
      collection: `tasklists/${decodeURIComponent(m[1] as string)}`,
      id: decodeURIComponent(m[2] as string),
    };
  return undefined;
}

/** The collection of a create path (`calendars/{id}/events`, `contacts`, `tasklists/{id}/tasks`). */
function collectionPathOf(path: string): { collection: string } | undefined {
  if (path === "contacts") return { collection: "contacts" };
  let m = path.match(/^calendars\/([^/]+)\/events$/);
  if (m) return { collection: `calendars/${decodeURIComponent(m[1] as string)}` };
  m = path.match(/^tasklists\/([^/]+)\/tasks$/);
  if (m) return { collection: `tasklists/${decodeURIComponent(m[1] as string)}` };
  return undefined;
}

function inWindow(r: StoredRecord, w: TokenBody["w"]): boolean {
  if (!w) return true;
  const d = r.data as {
    receivedAt?: string;
    start?: { dateTime?: string };
    end?: { dateTime?: string };
  };
  if (w.daysWithin !== undefined && d.receivedAt !== undefined) {
    if (Date.parse(d.receivedAt) < Date.now() - w.daysWithin * 86400_000) return false;
  }
  const start = d.start?.dateTime ? Date.parse(d.start.dateTime) : undefined;
  const end = d.end?.dateTime ? Date.parse(d.end.dateTime) : start;
  if (w.timeMin && end !== undefined && end <= Date.parse(w.timeMin)) return false;
  if (w.timeMax && start !== undefined && start >= Date.parse(w.timeMax)) return false;
  return true;
}

function encode(t: TokenBody): string {
  return Buffer.from(JSON.stringify(t)).toString("base64url");
}

function decode(s: string): TokenBody | undefined {
  try {
    const t = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as TokenBody;
    return typeof t.a === "string" && typeof t.s === "number" ? t : undefined;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.end(text);
}

/** The same delta token moved past the server's head (a token it never issued). */
export function aheadToken(token: string): string {
  const t = decode(token);
  if (!t) throw new Error("not an emulator token");
  return encode({ ...t, s: t.s + 1000, i: undefined });
}
