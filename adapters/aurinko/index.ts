/**
 * `deltasync/adapters/aurinko`: Aurinko's unified API (Google, Microsoft 365, Exchange, IMAP…)
 * as deltasync scopes: email, calendars, contacts and tasks over Aurinko's two delta streams,
 * the calendar list and task lists as hierarchies, and push through Aurinko subscriptions.
 *
 * @example
 * const aurinko = createAurinkoAccount({ accessToken, accountId: "alice" });
 * const result = await syncEmail(aurinko, { daysWithin: 30, store, onUpdated, onDeleted });
 * aurinkoTokens(result); // { syncUpdatedToken, syncDeletedToken }
 */
import { filter } from "rxjs";
import type { Dispatcher } from "undici";
import type { ChangeSource } from "../../src/core/source.js";
import { type Account, createSyncable, type Syncable } from "../../src/core/syncable.js";
import type { SyncWindow } from "../../src/core/types.js";
import { createAgent, createHttpClient, type HttpClientOptions } from "../../src/http/index.js";
import { NotificationHub } from "../../src/notify/hub.js";
import type { WebhookReceiver } from "../../src/notify/webhook.js";
import type { WriteTarget } from "../../src/two-way/types.js";
import { classifyAurinkoError } from "./aurinko-errors.js";
import { folderSource } from "./aurinko-folders.js";
import {
  CONTACTS_KEY,
  calendarKind,
  contactsKind,
  emailKind,
  MAIL_KEY,
  tasksKind,
} from "./aurinko-kinds.js";
import {
  type AurinkoSubscription,
  type AurinkoWatchOptions,
  createAurinkoReceiver,
  SubscriptionRegistry,
  type SubscriptionTarget,
  subscribe,
} from "./aurinko-push.js";
import { type ReadyWait, type StreamKind, streamSource } from "./aurinko-stream.js";
import { aurinkoItemWriteTarget, aurinkoMailWriteTarget } from "./aurinko-write.js";
import {
  AccountInfoSchema,
  type AurinkoContact,
  type AurinkoEvent,
  type AurinkoFolder,
  type AurinkoMessage,
  type AurinkoTask,
} from "./schemas.js";

export { classifyAurinkoError } from "./aurinko-errors.js";
export { CONTACTS_KEY, MAIL_KEY } from "./aurinko-kinds.js";
export type { AurinkoSubscription, AurinkoWatchOptions } from "./aurinko-push.js";
export { signDelivery } from "./aurinko-push.js";
export { type AurinkoTokens, aurinkoTokens } from "./aurinko-tokens.js";
export {
  type AurinkoWriteCollection,
  aurinkoItemWriteTarget,
  aurinkoMailWriteTarget,
} from "./aurinko-write.js";
export type {
  AurinkoContact,
  AurinkoEvent,
  AurinkoFolder,
  AurinkoMessage,
  AurinkoTask,
} from "./schemas.js";

const ADAPTER = "aurinko";

/** Options of `createAurinkoAccount`. */
export interface AurinkoOptions {
  /** The account's access token (Aurinko's bearer token). */
  accessToken?: string;
  /** Supplies the token; called with `forceRefresh: true` once after a 401. */
  getAccessToken?: (opts: { forceRefresh: boolean }) => Promise<string>;
  /** Default `https://api.aurinko.io/v1/`. */
  baseUrl?: string;
  /** A stable, credential-free label for `id` (e.g. the user's email). */
  accountId?: string;
  /** Fetch page N+1 while page N is imported (default true). */
  prefetch?: boolean;
  /** `POST …/sync` answering `ready: false`: pause 1 s doubling to 5 s, give up after 60 s. */
  ready?: Partial<ReadyWait>;
  /** Task syncs skip tasks completed before this date (`skipCompletedBeforeDate`). */
  skipCompletedBeforeDate?: string;
  /** The app's signing secret: the webhook accepts only deliveries signed with it. */
  signingSecret?: string;
  /** How far a delivery's timestamp may be from now (seconds, default 300). */
  webhookToleranceSec?: number;
  /** The webhook's clock (epoch ms; tests). */
  now?: () => number;
  /** Sees webhook failures (a re-subscription that failed, a handler error). */
  onWebhookError?: (error: unknown) => void;
  timeoutMs?: number;
  connections?: number;
  retry?: HttpClientOptions["retry"];
  /** Replace the account's own undici Agent. */
  dispatcher?: Dispatcher;
}

/** An Aurinko account: every scope deltasync can sync, and push. */
export interface AurinkoAccount extends Account {
  /** Email across every folder (`daysWithin` bounds the initial scan). */
  mail(): Syncable<AurinkoMessage>;
  /** One calendar's events (`primary` allowed; `timeMin`/`timeMax` bound it). */
  calendar(calendarId: string): Syncable<AurinkoEvent>;
  contacts(): Syncable<AurinkoContact>;
  /** One task list's tasks. */
  tasks(tasklistId: string): Syncable<AurinkoTask>;
  /** The calendars as a folder hierarchy. */
  calendarList(): Syncable<AurinkoFolder>;
  /** The task lists as a folder hierarchy. */
  taskLists(): Syncable<AurinkoFolder>;
  /** Subscribes to `/email/messages`; deliveries notify `mail()`. */
  watchMail(options: AurinkoWatchOptions): Promise<AurinkoSubscription>;
  /** Subscribes to `/calendars/{id}/events`; deliveries notify `calendar(id)`. */
  watchCalendar(calendarId: string, options: AurinkoWatchOptions): Promise<AurinkoSubscription>;
  /** Subscribes to `/contacts`; deliveries notify `contacts()`. */
  watchContacts(options: AurinkoWatchOptions): Promise<AurinkoSubscription>;
  /** Subscribes to `/tasklists/{id}/tasks`; deliveries notify `tasks(id)`. */
  watchTasks(tasklistId: string, options: AurinkoWatchOptions): Promise<AurinkoSubscription>;
  /** Two-way: the events of a calendar as a `WriteTarget` (If-Match → 412 → `ConflictError`). */
  calendarWriteTarget(calendarId: string): WriteTarget;
  /** Two-way: the contacts as a `WriteTarget`. */
  contactsWriteTarget(): WriteTarget;
  /** Two-way: the tasks of a task list as a `WriteTarget`. */
  tasksWriteTarget(tasklistId: string): WriteTarget;
  /** Two-way: read state, keywords and Trash of the messages (no creates). */
  mailWriteTarget(): WriteTarget;
  /** The receiver of this account's subscriptions (serve it at their `notificationUrl`). */
  readonly webhook: WebhookReceiver;
  close(): Promise<void>;
}

/** Scope ids, as written into states and notifications. */
export const aurinkoScopes = {
  mail: "mail",
  contacts: "contacts",
  calendar: (calendarId: string) => `calendar:${calendarId}`,
  tasks: (tasklistId: string) => `tasks:${tasklistId}`,
  calendarList: "hierarchy:calendars",
  taskLists: "hierarchy:tasklists",
} as const;

/** Creates an Aurinko account. No request is made until a sync. */
export function createAurinkoAccount(options: AurinkoOptions): AurinkoAccount {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const agent = options.dispatcher ?? createAgent({ connections: options.connections, timeoutMs });
  const http = createHttpClient({
    baseUrl: options.baseUrl ?? "https://api.aurinko.io/v1/",
    accessToken: options.accessToken,
    getAccessToken: options.getAccessToken,
    timeoutMs,
    retry: options.retry,
    dispatcher: agent,
    classify: classifyAurinkoError,
  });
  const ready: ReadyWait = {
    minDelayMs: options.ready?.minDelayMs ?? 1000,
    maxDelayMs: options.ready?.maxDelayMs ?? 5000,
    timeoutMs: options.ready?.timeoutMs ?? 60_000,
    sleep: options.ready?.sleep,
  };
  const prefetch = options.prefetch ?? true;
  const hub = new NotificationHub();
  const registry = new SubscriptionRegistry();
  const syncables = new Map<string, Syncable>();
  const subscriptions = new Set<AurinkoSubscription>();
  let closed = false;

  // Who the token belongs to: the identity of every state (a state of another account is refused).
  let who: Promise<string> | undefined;
  const accountId = (signal: AbortSignal): Promise<string> => {
    if (!who) {
      // Shared by every scope of the account: one sync's abort must not fail the others, so the
      // request itself is not tied to a signal (each caller stops waiting on its own).
      const asked = http
        .request({ path: "account", schema: AccountInfoSchema, endpoint: "aurinko.account" })
        .then((res) => res.body.id);
      // A failed look-up is asked again next time.
      asked.catch(() => {
        if (who === asked) who = undefined;
      });
      who = asked;
    }
    return abortable(who, signal);
  };

  function scope<T>(
    name: string,
    make: () => ChangeSource,
    windowKeys: readonly (keyof SyncWindow)[] = [],
  ): Syncable<T> {
    let syncable = syncables.get(name);
    if (!syncable) {
      syncable = createSyncable({
        adapter: ADAPTER,
        scope: name,
        source: { ...make(), readAhead: prefetch },
        windowKeys,
        notifications: (f) => hub.stream(f).pipe(filter((n) => n.scope === name)),
      });
      syncables.set(name, syncable);
    }
    return syncable as Syncable<T>;
  }

  const stream = <R>(kind: StreamKind<R>) =>
    streamSource({ http, kind, ready, accountId }) as ChangeSource;

  async function watch(
    target: SubscriptionTarget,
    watchOptions: AurinkoWatchOptions,
  ): Promise<AurinkoSubscription> {
    const sub = await subscribe(http, registry, hub, target, watchOptions);
    const stop = sub.stop.bind(sub);
    subscriptions.add(sub);
    return Object.assign(sub, {
      stop: async () => {
        subscriptions.delete(sub);
        await stop();
      },
    });
  }

  const enc = encodeURIComponent;
  return {
    id: `aurinko:${options.accountId ?? "me"}`,
    webhook: createAurinkoReceiver(registry, hub, {
      signingSecret: options.signingSecret,
      toleranceSec: options.webhookToleranceSec,
      now: options.now,
      onError: options.onWebhookError,
    }),
    mail: () => scope(aurinkoScopes.mail, () => stream(emailKind()), ["daysWithin"]),
    calendar: (id) =>
      scope(aurinkoScopes.calendar(id), () => stream(calendarKind(id)), ["timeMin", "timeMax"]),
    contacts: () => scope(aurinkoScopes.contacts, () => stream(contactsKind())),
    tasks: (id) =>
      scope(aurinkoScopes.tasks(id), () => stream(tasksKind(id, options.skipCompletedBeforeDate))),
    calendarList: () =>
      scope(aurinkoScopes.calendarList, () => folderSource({ http, path: "calendars", accountId })),
    taskLists: () =>
      scope(aurinkoScopes.taskLists, () => folderSource({ http, path: "tasklists", accountId })),
    watchMail: (o) =>
      watch({ resource: "/email/messages", scope: aurinkoScopes.mail, parentKey: MAIL_KEY }, o),
    watchCalendar: (id, o) =>
      watch(
        {
          resource: `/calendars/${enc(id)}/events`,
          scope: aurinkoScopes.calendar(id),
          parentKey: id,
        },
        o,
      ),
    watchContacts: (o) =>
      watch({ resource: "/contacts", scope: aurinkoScopes.contacts, parentKey: CONTACTS_KEY }, o),
    watchTasks: (id, o) =>
      watch(
        { resource: `/tasklists/${enc(id)}/tasks`, scope: aurinkoScopes.tasks(id), parentKey: id },
        o,
      ),
    calendarWriteTarget: (calendarId) =>
      aurinkoItemWriteTarget(http, { kind: "calendar", calendarId }),
    contactsWriteTarget: () => aurinkoItemWriteTarget(http, { kind: "contacts" }),
    tasksWriteTarget: (tasklistId) => aurinkoItemWriteTarget(http, { kind: "tasks", tasklistId }),
    mailWriteTarget: () => aurinkoMailWriteTarget(http),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...subscriptions].map((s) => s.stop()));
      hub.complete();
      await http.close();
      if (!options.dispatcher) await agent.close();
    },
  };
}

/** `promise`, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
