/**
 * `deltasync/adapters/google`: Google Calendar (events, calendar list), People (contacts) and
 * Gmail (history) as deltasync scopes, plus push: Calendar channels and Gmail's Pub/Sub watch,
 * each with its webhook receiver.
 *
 * @example
 * const google = createGoogleAccount({ getAccessToken: () => oauth.token() });
 * const state = await google.calendar("primary").sync({ update: (o) => db.upsert(o) }, saved);
 */
import { filter, type Observable } from "rxjs";
import type { Dispatcher } from "undici";
import { z } from "zod";
import type { ChangeSource } from "../../src/core/source.js";
import { type Account, createSyncable, type Syncable } from "../../src/core/syncable.js";
import type { Notification, SyncWindow } from "../../src/core/types.js";
import {
  createAgent,
  createHttpClient,
  type HttpClient,
  type HttpClientOptions,
} from "../../src/http/index.js";
import { NotificationHub } from "../../src/notify/hub.js";
import type { WebhookReceiver } from "../../src/notify/webhook.js";
import type { WriteTarget } from "../../src/two-way/types.js";
import { eventsSource } from "./google-calendar.js";
import { calendarListSource } from "./google-calendar-list.js";
import { classifyGoogleError } from "./google-errors.js";
import { gmailSource } from "./google-gmail.js";
import {
  createMailReceiver,
  type MailWatch,
  type MailWatchOptions,
  MailWatchSlot,
  watchMail,
} from "./google-gmail-push.js";
import { connectionsSource } from "./google-people.js";
import {
  type CalendarWatch,
  ChannelRegistry,
  createWebhookReceiver,
  type WatchOptions,
  watchCalendar,
} from "./google-push.js";
import { accountOf } from "./google-shared.js";
import { calendarWriteTarget } from "./google-write.js";
import type {
  GmailMessage,
  GoogleCalendarListEntry,
  GoogleEvent,
  GooglePerson,
} from "./schemas.js";

export type { PushRequest, WebhookReceiver } from "../../src/notify/webhook.js";
export { classifyGoogleError } from "./google-errors.js";
export type { MailPushData, MailWatch, MailWatchOptions } from "./google-gmail-push.js";
export type { CalendarWatch, GoogleChannel, WatchOptions } from "./google-push.js";
export type {
  GmailMessage,
  GoogleCalendarListEntry,
  GoogleEvent,
  GooglePerson,
} from "./schemas.js";

const ADAPTER = "google";
const MAIL_SCOPE = "mail";

/** Options of `createGoogleAccount`. */
export interface GoogleOptions {
  /** A fixed OAuth access token. */
  accessToken?: string;
  /** Returns a valid access token; called with `forceRefresh: true` once after a 401. */
  getAccessToken?: (opts: { forceRefresh: boolean }) => Promise<string>;
  /**
   * One root for every API (an emulator): Calendar at `<baseUrl>calendar/v3/`, People at
   * `<baseUrl>v1/`, Gmail at `<baseUrl>gmail/v1/`. Default: Google's hosts.
   */
  baseUrl?: string;
  /**
   * A stable, credential-free account label (e.g. the user's email), used in `id` and written
   * into every state as the account it belongs to. Without it each API is asked once which
   * account the token belongs to (Calendar `calendars.get("primary")`, People `people.get
   * ("people/me")`, Gmail `users.getProfile`).
   */
  accountId?: string;
  /** Page size of every list call (capped per API: 2500 events, 250 calendars, 1000 people, 500 Gmail). */
  pageSize?: number;
  /** Calendar `singleEvents` (expand recurring events); recorded in the state. Default false. */
  singleEvents?: boolean;
  /** People `personFields`; recorded in the state. */
  personFields?: string;
  /** Fetch page N+1 while page N is imported (default true). */
  prefetch?: boolean;
  /** Parallel `messages.get` per Gmail page (default 8; Gmail allows about 10 per user). */
  gmailConcurrency?: number;
  timeoutMs?: number;
  connections?: number;
  retry?: HttpClientOptions["retry"];
  /** Replace the account's own undici Agent. */
  dispatcher?: Dispatcher;
}

/** A Google account: every scope deltasync can sync, and Calendar push. */
export interface GoogleAccount extends Account {
  mail(): Syncable<GmailMessage>;
  calendar(calendarId: string): Syncable<GoogleEvent>;
  contacts(): Syncable<GooglePerson>;
  /** The calendar list as a folder hierarchy (calendars added, changed, removed). */
  calendarList(): Syncable<GoogleCalendarListEntry>;
  /** Two-way sync: the calendar's write surface (client ids, If-Match), for `push`. */
  calendarWriteTarget(calendarId: string): WriteTarget;
  /** Opens an `events.watch` channel for a calendar and renews it until `stop()`. */
  watchCalendar(calendarId: string, options: WatchOptions): Promise<CalendarWatch>;
  /** The webhook receiving this account's channel deliveries. */
  readonly webhook: WebhookReceiver;
  /**
   * Calls Gmail `users.watch` (publishing mailbox changes to a Pub/Sub topic) and renews it until
   * `stop()`; deliveries to `mailWebhook` then notify `mail()`. One watch per account at a time.
   */
  watchMail(options: MailWatchOptions): Promise<MailWatch>;
  /** The receiver of the Pub/Sub push subscription of `watchMail`'s topic. */
  readonly mailWebhook: WebhookReceiver;
  close(): Promise<void>;
}

/** The scope id of a calendar in states and notifications. */
export const calendarScope = (calendarId: string): string => `calendar:${calendarId}`;

/** Creates a Google account. No request is made until a sync. */
export function createGoogleAccount(options: GoogleOptions): GoogleAccount {
  const root = options.baseUrl?.replace(/\/?$/, "/");
  const timeoutMs = options.timeoutMs ?? 30_000;
  // One keep-alive pool for the three API hosts of the account.
  const agent = options.dispatcher ?? createAgent({ connections: options.connections, timeoutMs });
  const client = (baseUrl: string): HttpClient =>
    createHttpClient({
      baseUrl,
      accessToken: options.accessToken,
      getAccessToken: options.getAccessToken,
      timeoutMs,
      retry: options.retry,
      dispatcher: agent,
      classify: classifyGoogleError,
    });
  const calendarHttp = client(
    root ? `${root}calendar/v3/` : "https://www.googleapis.com/calendar/v3/",
  );
  const peopleHttp = client(root ? `${root}v1/` : "https://people.googleapis.com/v1/");
  const gmailHttp = client(root ? `${root}gmail/v1/` : "https://gmail.googleapis.com/gmail/v1/");
  const pageSize = options.pageSize ?? 250;
  const prefetch = options.prefetch ?? true;
  // Who the token belongs to: part of the identity of every state (a state of another account
  // is a StateError). The primary calendar's id is the account's address.
  const calendarAccount = accountOf(options.accountId, async () => {
    const res = await calendarHttp.request({
      path: "calendars/primary",
      schema: z.looseObject({ id: z.string().min(1) }),
      endpoint: "calendar.calendars.get",
    });
    return res.body.id;
  });
  const peopleAccount = accountOf(options.accountId, async () => {
    const res = await peopleHttp.request({
      path: "people/me",
      query: { personFields: "metadata" },
      schema: z.looseObject({ resourceName: z.string().min(1) }),
      endpoint: "people.get",
    });
    return res.body.resourceName;
  });
  const gmailAccount = accountOf(options.accountId, async () => {
    const res = await gmailHttp.request({
      path: "users/me/profile",
      schema: z.looseObject({ emailAddress: z.string().min(1) }),
      endpoint: "gmail.users.getProfile",
    });
    return res.body.emailAddress;
  });
  const hub = new NotificationHub<GoogleEvent>();
  const registry = new ChannelRegistry();
  const calendars = new Map<string, Syncable<GoogleEvent>>();
  // Calendar channels and the Gmail watch still running: close() stops them.
  const watches = new Set<Stoppable>();
  const mailSlot = new MailWatchSlot();
  let mail: Syncable<GmailMessage> | undefined;
  let contacts: Syncable<GooglePerson> | undefined;
  let list: Syncable<GoogleCalendarListEntry> | undefined;
  let closed = false;

  function scope<C, P, T>(
    name: string,
    source: ChangeSource<C, P>,
    windowKeys: readonly (keyof SyncWindow)[] = [],
  ): Syncable<T> {
    return createSyncable<T>({
      adapter: ADAPTER,
      scope: name,
      source: { ...source, readAhead: prefetch } as ChangeSource,
      windowKeys,
    });
  }

  return {
    id: `google:${options.accountId ?? "me"}`,
    webhook: createWebhookReceiver(registry, hub as NotificationHub, calendarScope),
    mailWebhook: createMailReceiver(mailSlot, hub as NotificationHub, MAIL_SCOPE),
    calendar(calendarId) {
      let syncable = calendars.get(calendarId);
      if (!syncable) {
        const name = calendarScope(calendarId);
        const source = eventsSource({
          http: calendarHttp,
          calendarId,
          pageSize: Math.min(pageSize, 2500),
          singleEvents: options.singleEvents ?? false,
          account: calendarAccount,
        });
        syncable = createSyncable<GoogleEvent>({
          adapter: ADAPTER,
          scope: name,
          source: { ...source, readAhead: prefetch } as ChangeSource,
          windowKeys: ["timeMin", "timeMax"],
          notifications: (filter) => hub.stream(filter).pipe(onlyScope(name)),
        });
        calendars.set(calendarId, syncable);
      }
      return syncable;
    },
    calendarWriteTarget: (calendarId) => calendarWriteTarget(calendarHttp, calendarId),
    calendarList() {
      list ??= scope(
        "hierarchy:calendarList",
        calendarListSource({ http: calendarHttp, pageSize, account: calendarAccount }),
      );
      return list;
    },
    contacts() {
      contacts ??= scope(
        "gab",
        connectionsSource({
          http: peopleHttp,
          pageSize: Math.min(pageSize, 1000),
          personFields: options.personFields ?? "names,emailAddresses,phoneNumbers,metadata",
          account: peopleAccount,
        }),
      );
      return contacts;
    },
    mail() {
      if (!mail) {
        const source = gmailSource({
          http: gmailHttp,
          pageSize,
          concurrency: options.gmailConcurrency ?? 8,
          account: gmailAccount,
        });
        mail = createSyncable<GmailMessage>({
          adapter: ADAPTER,
          scope: MAIL_SCOPE,
          source: { ...source, readAhead: prefetch } as ChangeSource,
          windowKeys: ["daysWithin"],
          // Pub/Sub deliveries (after `watchMail`) arrive here; without a watch it never emits.
          notifications: (filter) =>
            (hub as NotificationHub).stream(filter).pipe(onlyScope(MAIL_SCOPE)) as Observable<
              Notification<GmailMessage>
            >,
        });
      }
      return mail;
    },
    async watchMail(watchOptions) {
      return tracked(await watchMail(gmailHttp, mailSlot, watchOptions), watches);
    },
    async watchCalendar(calendarId, watchOptions) {
      return tracked(
        await watchCalendar(calendarHttp, registry, calendarId, watchOptions),
        watches,
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...watches].map((w) => w.stop()));
      hub.complete();
      await Promise.all([calendarHttp.close(), peopleHttp.close(), gmailHttp.close()]);
      if (!options.dispatcher) await agent.close();
    },
  };
}

function onlyScope<N extends { scope: string }>(name: string) {
  return filter<N>((n) => n.scope === name);
}

interface Stoppable {
  stop(): Promise<void>;
}

/** Keeps `watch` in `live` until it is stopped. */
function tracked<W extends Stoppable>(watch: W, live: Set<Stoppable>): W {
  const stop = watch.stop.bind(watch);
  live.add(watch);
  watch.stop = async () => {
    live.delete(watch);
    await stop();
  };
  return watch;
}
