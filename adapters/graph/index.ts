/**
 * `deltasync/adapters/graph`: Microsoft Graph (Outlook mail, calendars, contacts) as deltasync
 * scopes through Graph's delta queries, and push through change-notification subscriptions.
 *
 * @example
 * const graph = createGraphAccount({ getAccessToken: () => msal.token() });
 * const state = await graph.mail().sync({ update: (o) => db.upsert(o) }, saved);
 */
import { filter } from "rxjs";
import type { Dispatcher } from "undici";
import { compositeSource } from "../../src/core/composite.js";
import type { ChangeSource } from "../../src/core/source.js";
import { type Account, createSyncable, type Syncable } from "../../src/core/syncable.js";
import type {
  Notification,
  NotificationFilter,
  ObjectType,
  SyncWindow,
} from "../../src/core/types.js";
import { createAgent, createHttpClient, type HttpClientOptions } from "../../src/http/index.js";
import { NotificationHub } from "../../src/notify/hub.js";
import type { WebhookReceiver } from "../../src/notify/webhook.js";
import type { WriteTarget } from "../../src/two-way/types.js";
import { calendarSource, DEFAULT_CALENDAR } from "./graph-calendar.js";
import { calendarListSource } from "./graph-calendar-list.js";
import {
  contactsSource,
  DEFAULT_CONTACT_FOLDER,
  DEFAULT_CONTACT_SELECT,
} from "./graph-contacts.js";
import { classifyGraphError } from "./graph-errors.js";
import { FolderSet } from "./graph-folder-set.js";
import { foldersSource } from "./graph-folders.js";
import { limitConcurrency } from "./graph-limiter.js";
import { DEFAULT_MESSAGE_SELECT, messagesSource } from "./graph-messages.js";
import {
  createReceiver,
  type GraphSubscription,
  type SubscriptionOptions,
  SubscriptionRegistry,
  type SubscriptionTarget,
  subscribe,
} from "./graph-push.js";
import { catchUpAfterResume, clearBeforeListing } from "./graph-resume.js";
import { contactsWriteTarget, eventsWriteTarget, mailWriteTarget } from "./graph-write.js";
import type {
  GraphCalendar,
  GraphContact,
  GraphEvent,
  GraphFolder,
  GraphMessage,
} from "./schemas.js";
import { UserSchema } from "./schemas.js";

export type { PushRequest, WebhookReceiver } from "../../src/notify/webhook.js";
export { DEFAULT_CALENDAR } from "./graph-calendar.js";
export { DEFAULT_CONTACT_FOLDER, DEFAULT_CONTACT_SELECT } from "./graph-contacts.js";
export { classifyGraphError } from "./graph-errors.js";
export { DEFAULT_MESSAGE_SELECT } from "./graph-messages.js";
export type { GraphSubscription, SubscriptionOptions } from "./graph-push.js";
export { CLIENT_KEY_PROPERTY } from "./graph-write.js";
export type {
  GraphCalendar,
  GraphContact,
  GraphEvent,
  GraphFolder,
  GraphMessage,
} from "./schemas.js";

const ADAPTER = "graph";

/** Options of `createGraphAccount`. */
export interface GraphOptions {
  /** A fixed OAuth access token (from `@azure/msal-node`, for instance). */
  accessToken?: string;
  /** Returns a valid access token; called with `forceRefresh: true` once after a 401. */
  getAccessToken?: (opts: { forceRefresh: boolean }) => Promise<string>;
  /** The API root; default `https://graph.microsoft.com/v1.0/`. Paging links must stay on its origin. */
  baseUrl?: string;
  /** Whose mailbox: `me` (default, delegated) or a user id / UPN (application permissions). */
  user?: string;
  /** A stable, credential-free account label used in `id` (e.g. the user's address). */
  accountId?: string;
  /** `Prefer: odata.maxpagesize` of every delta (Outlook's default is 10). Default 100. */
  pageSize?: number;
  /** `$select` of messages; default `DEFAULT_MESSAGE_SELECT`. `[]` selects everything. */
  messageSelect?: readonly string[];
  /** `$select` of contacts; default `DEFAULT_CONTACT_SELECT`. */
  contactSelect?: readonly string[];
  /** The calendar window of a full sync without `timeMin`/`timeMax`: days before / after today. Default 365 / 365. */
  calendarWindowDays?: { past: number; future: number };
  /** Requests in flight per mailbox, shared by every scope of the account (Outlook allows 4). */
  maxConcurrency?: number;
  /** Fetch page N+1 while page N is imported (default true). */
  prefetch?: boolean;
  timeoutMs?: number;
  connections?: number;
  retry?: HttpClientOptions["retry"];
  /** Replace the account's own undici Agent. */
  dispatcher?: Dispatcher;
}

/** What a subscription watches. */
export type SubscriptionScope =
  | { mail: true }
  | { folder: string }
  | { calendar: string }
  | { contacts: true };

/** A Microsoft Graph account: every scope deltasync can sync, and change notifications. */
export interface GraphAccount extends Account {
  /** Every mail folder's messages (a composite of the per-folder deltas). */
  mail(): Syncable<GraphMessage>;
  /** One mail folder's messages (an id or a well-known name such as `inbox`). */
  folder(folderId: string): Syncable<GraphMessage>;
  /** The mail folder hierarchy (`mailFolders/delta`, child folders included). */
  mailFolders(): Syncable<GraphFolder>;
  /** The contact folder hierarchy (`contactFolders/delta`). */
  contactFolders(): Syncable<GraphFolder>;
  /** The calendar list (no delta in Graph: diffed against the last listing). */
  calendars(): Syncable<GraphCalendar>;
  /** One calendar's view (`primary` is the default calendar), bounded by a window. */
  calendar(calendarId: string): Syncable<GraphEvent>;
  /** Every contact folder's contacts, the default one included. */
  contacts(): Syncable<GraphContact>;
  /**
   * The events of a calendar as a two-way `WriteTarget` (creates deduped by `transactionId`,
   * `If-Match` on updates and deletes). See docs/two-way.md.
   */
  calendarWriteTarget(calendarId: string): WriteTarget;
  /** A contact folder's contacts as a `WriteTarget` (default: the default folder). */
  contactsWriteTarget(folderKey?: string): WriteTarget;
  /** The mailbox's messages as a `WriteTarget`: read and follow-up flags, moves, deletes. */
  mailWriteTarget(): WriteTarget;
  /** Creates a change-notification subscription feeding that scope's `notifications()`. */
  subscribe(scope: SubscriptionScope, options: SubscriptionOptions): Promise<GraphSubscription>;
  /** The receiver of the notification and lifecycle URLs (validation handshake included). */
  readonly webhook: WebhookReceiver;
  close(): Promise<void>;
}

/** The scope id of a mail folder in states and notifications. */
export const folderScope = (folderId: string): string => `folder:${folderId}`;
/** The scope id of a calendar in states and notifications. */
export const calendarScope = (calendarId: string): string => `calendar:${calendarId}`;

/** Creates a Graph account. No request is made until a sync. */
export function createGraphAccount(options: GraphOptions): GraphAccount {
  const baseUrl = options.baseUrl ?? "https://graph.microsoft.com/v1.0/";
  const timeoutMs = options.timeoutMs ?? 30_000;
  const agent = options.dispatcher ?? createAgent({ connections: options.connections, timeoutMs });
  const raw = createHttpClient({
    baseUrl,
    accessToken: options.accessToken,
    getAccessToken: options.getAccessToken,
    timeoutMs,
    retry: options.retry,
    dispatcher: agent,
    classify: classifyGraphError,
  });
  const maxConcurrency = options.maxConcurrency ?? 4;
  const http = limitConcurrency(raw, maxConcurrency);
  const user =
    options.user === undefined || options.user === "me"
      ? "me"
      : `users/${encodeURIComponent(options.user)}`;
  const pageSize = options.pageSize ?? 100;
  // ImmutableId: ids survive moves between folders (PROTOCOLS.md §2.1).
  const prefer = `odata.maxpagesize=${pageSize}, IdType="ImmutableId"`;
  const calendarPrefer = `${prefer}, outlook.timezone="UTC"`;
  const messageSelect = options.messageSelect ?? DEFAULT_MESSAGE_SELECT;
  const contactSelect = options.contactSelect ?? DEFAULT_CONTACT_SELECT;
  const prefetch = options.prefetch ?? true;
  const hub = new NotificationHub();
  const registry = new SubscriptionRegistry();
  const subscriptions = new Set<GraphSubscription>();
  const scopes = new Map<string, Syncable>();
  let me: string | undefined;
  let closed = false;

  /**
   * Who the token belongs to (`GET /me`), part of every scope's identity. Kept once known; each
   * caller asks with its own signal until then (an aborted sync must not fail another one).
   */
  const userId = async (signal: AbortSignal): Promise<string> => {
    if (me !== undefined) return me;
    const res = await http.request({
      path: user,
      query: { $select: "id,userPrincipalName" },
      schema: UserSchema,
      endpoint: "graph.user.get",
      signal,
    });
    me = res.body.id;
    return me;
  };

  /** The scope `name`, built by `source()` on first use and kept for the account's life. */
  function scope<T>(
    name: string,
    source: () => ChangeSource,
    windowKeys: readonly (keyof SyncWindow)[] = [],
  ): Syncable<T> {
    let syncable = scopes.get(name);
    if (!syncable) {
      const identity = async (signal: AbortSignal) =>
        `${new URL(baseUrl).origin}|${await userId(signal)}|${name}`;
      syncable = createSyncable({
        adapter: ADAPTER,
        scope: name,
        source: {
          ...catchUpAfterResume(source()),
          readAhead: prefetch,
          identity,
          // A listing's first page has no token and no tombstones: a resumed round can't see an
          // object a crashed batch was given and that is gone now, so the engine marks it first.
          reportsByContent: true,
        } as ChangeSource,
        windowKeys,
        notifications: (f: NotificationFilter) =>
          hub.stream(f).pipe(filter((n: Notification) => n.scope === name)),
      });
      scopes.set(name, syncable);
    }
    return syncable as Syncable<T>;
  }

  const mailFolders = () =>
    scope<GraphFolder>("hierarchy:mail", () =>
      foldersSource({ http, user, kind: "mailFolders", prefer, concurrency: maxConcurrency }),
    );
  const contactFolders = () =>
    scope<GraphFolder>("hierarchy:contacts", () =>
      foldersSource({ http, user, kind: "contactFolders", prefer, concurrency: maxConcurrency }),
    );
  let contactSet: FolderSet | undefined;
  const messages = (folderId: string, resolveRemoved: boolean) =>
    messagesSource({
      http,
      user,
      folderId,
      select: messageSelect,
      prefer,
      resolveRemoved,
      concurrency: maxConcurrency,
    });
  const contactsOf = (folderKey: string, resolveRemoved: boolean) =>
    contactsSource({
      http,
      user,
      folderKey,
      select: contactSelect,
      prefer,
      resolveRemoved,
      concurrency: maxConcurrency,
      keyOf: async (parent, signal) => {
        const set = contactSet;
        if (!set || set.has(parent)) return parent;
        // A folder created since the round listed them: ask again before calling it the default.
        await set.refresh(signal);
        return set.has(parent) ? parent : DEFAULT_CONTACT_FOLDER;
      },
    });

  const account: GraphAccount = {
    id: `graph:${options.accountId ?? options.user ?? "me"}`,
    webhook: createReceiver(registry, hub),
    mailFolders,
    contactFolders,
    calendars: () =>
      scope<GraphCalendar>(
        "hierarchy:calendars",
        () => calendarListSource({ http, user, pageSize }) as ChangeSource,
      ),
    folder: (folderId) =>
      scope<GraphMessage>(folderScope(folderId), () => messages(folderId, false)),
    mail: () =>
      scope<GraphMessage>("mail", () => {
        const set = new FolderSet(mailFolders() as Syncable);
        return compositeSource({
          name: "graph mail",
          listChildren: (signal) => set.refresh(signal),
          child: cached((key) => clearBeforeListing(key, messages(key, true))),
        });
      }),
    contacts: () =>
      scope<GraphContact>("contacts", () => {
        const set = new FolderSet(contactFolders() as Syncable);
        contactSet = set;
        return compositeSource({
          name: "graph contacts",
          listChildren: async (signal) => [DEFAULT_CONTACT_FOLDER, ...(await set.refresh(signal))],
          child: cached((key) => clearBeforeListing(key, contactsOf(key, true))),
        });
      }),
    calendar: (calendarId) =>
      scope<GraphEvent>(
        calendarScope(calendarId),
        () =>
          calendarSource({
            http,
            user,
            calendarId,
            prefer: calendarPrefer,
            defaultDays: options.calendarWindowDays ?? { past: 365, future: 365 },
            concurrency: maxConcurrency,
          }),
        ["timeMin", "timeMax"],
      ),
    calendarWriteTarget: (calendarId) =>
      eventsWriteTarget({ http, user, prefer: calendarPrefer }, calendarId),
    contactsWriteTarget: (folderKey = DEFAULT_CONTACT_FOLDER) =>
      contactsWriteTarget(
        { http, user, prefer, select: contactSelect },
        folderKey,
        DEFAULT_CONTACT_FOLDER,
      ),
    mailWriteTarget: () => mailWriteTarget({ http, user, prefer, select: messageSelect }),
    async subscribe(target, subscriptionOptions) {
      const sub = await subscribe(
        http,
        registry,
        hub,
        subscriptionTarget(user, target),
        subscriptionOptions,
      );
      const stop = sub.stop.bind(sub);
      subscriptions.add(sub);
      sub.stop = async () => {
        subscriptions.delete(sub);
        await stop();
      };
      return sub;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...subscriptions].map((s) => s.stop()));
      hub.complete();
      await http.close();
      if (!options.dispatcher) await agent.close();
    },
  };
  return account;
}

/** `make`, called once per key. */
function cached<T>(make: (key: string) => T): (key: string) => T {
  const made = new Map<string, T>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) made.set(key, (value = make(key)));
    return value;
  };
}

/** The Graph resource and our scope of each subscription target (PROTOCOLS.md §2.5). */
function subscriptionTarget(user: string, target: SubscriptionScope): SubscriptionTarget {
  const item: ObjectType = "item";
  if ("mail" in target) return { resource: `${user}/messages`, scope: "mail", objectType: item };
  if ("folder" in target)
    return {
      resource: `${user}/mailFolders('${target.folder}')/messages`,
      scope: folderScope(target.folder),
      objectType: item,
    };
  if ("calendar" in target)
    return {
      resource:
        target.calendar === DEFAULT_CALENDAR
          ? `${user}/events`
          : `${user}/calendars/${target.calendar}/events`,
      scope: calendarScope(target.calendar),
      objectType: item,
    };
  return { resource: `${user}/contacts`, scope: "contacts", objectType: "user" };
}
