import { NEVER, type Observable, type Subscription } from "rxjs";
import { checkFilter, filterNotifications } from "../notify/filter.js";
import { type SinkLike, type SubscribeOptions, subscribeSink } from "../notify/subscribe.js";
import { exportChanges } from "./engine.js";
import type { ScopeDefinition } from "./source.js";
import type {
  Importer,
  Notification,
  NotificationFilter,
  SyncOptions,
  SyncOutcome,
} from "./types.js";

/**
 * A scope you can sync and subscribe to: a folder's items, a store's hierarchy, the address
 * book, or a whole server. Every adapter's scopes have this shape.
 */
export interface Syncable<T = unknown> {
  /** The adapter id recorded in states. */
  readonly adapter: string;
  /** The scope id recorded in states. */
  readonly scope: string;
  /** True when the backend pushes notifications; false means `notifications()` never emits. */
  readonly supportsPush: boolean;
  /**
   * Calls the importer for every change since `state` and resolves with the next state.
   * No state means a full sync.
   * @example
   * const state = await folder.sync({ update: (o) => db.upsert(o), delete: (o) => db.remove(o.sourcekey) });
   */
  sync(importer: Importer<T>, state?: string | null, options?: SyncOptions): Promise<string>;
  /** Like `sync`, but resolves with counts, `complete` and `fullSync` as well as the state. */
  exportChanges(
    importer: Importer<T>,
    state?: string | null,
    options?: SyncOptions,
  ): Promise<SyncOutcome>;
  /** Real-time notifications of this scope that pass the filter. */
  notifications(filter?: NotificationFilter): Observable<Notification<T>>;
  /**
   * Delivers notifications to a sink until the returned subscription is unsubscribed. A sink
   * that throws never ends it and never becomes an uncaught exception (see `options.onError`).
   */
  subscribe(
    sink: SinkLike<T>,
    filter?: NotificationFilter,
    options?: SubscribeOptions<T>,
  ): Subscription;
}

/** Turns an adapter's scope definition into the public `Syncable`. */
export function createSyncable<T = unknown>(
  def: ScopeDefinition<unknown, unknown, T>,
): Syncable<T> {
  const base = def as ScopeDefinition;
  const notifications = (filter?: NotificationFilter): Observable<Notification<T>> => {
    checkFilter(filter);
    if (!def.notifications) return NEVER;
    // Filter again here: adapters filter at the source where they can, the contract holds anyway.
    return def.notifications(filter ?? {}).pipe(filterNotifications<T>(filter));
  };
  return {
    adapter: def.adapter,
    scope: def.scope,
    supportsPush: def.notifications !== undefined,
    exportChanges: (importer, state, options) =>
      exportChanges(base, importer as Importer, state, options),
    sync: async (importer, state, options) =>
      (await exportChanges(base, importer as Importer, state, options)).state,
    notifications,
    subscribe: (sink, filter, options) => subscribeSink(notifications(filter), sink, options),
  };
}

/**
 * One account of a backend, as the orchestrator's `syncEmail` / `syncCalendar` / `syncContacts`
 * see it. An adapter implements the members its backend has.
 */
export interface Account<T = unknown> {
  /** A stable, credential-free id (e.g. `imap:alice@host`), used in state keys and telemetry. */
  readonly id: string;
  /** The mail scope (server-wide over every mailbox, or the adapter's main mail folder). */
  mail?(): Syncable<T>;
  /** The items of one calendar. */
  calendar?(calendarId: string): Syncable<T>;
  /** The account's contacts (address book / GAB). */
  contacts?(): Syncable<T>;
  /** Releases connections; safe to call twice. */
  close?(): Promise<void>;
}
