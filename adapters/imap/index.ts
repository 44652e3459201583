/**
 * The IMAP adapter: one mailbox's items (`folder`), the mailbox hierarchy (`hierarchy`) and
 * server-wide mail (`server`, a composite over every selectable mailbox), on one connection.
 *
 * @example
 * const account = createImapAccount({ host: "imap.example.com", secure: true, user: "alice", password });
 * const state = await account.folder("INBOX").sync({ update: (o) => db.upsert(o) }, previousState);
 * await account.close();
 */
import { type Observable, Subject, takeUntil } from "rxjs";
import { ArgumentError } from "../../src/core/errors.js";
import { type Account, createSyncable, type Syncable } from "../../src/core/syncable.js";
import type { Notification } from "../../src/core/types.js";
import type { WriteTarget } from "../../src/two-way/types.js";
import { accountLabel } from "./imap-client.js";
import { createImapConnection } from "./imap-connection.js";
import { hierarchySource, type ImapFolder, listSelectable } from "./imap-hierarchy.js";
import { idleNotifications } from "./imap-idle.js";
import { mailboxSource } from "./imap-mailbox-sync.js";
import type { ImapMessage } from "./imap-messages.js";
import { hierarchyNotifications, serverNotifications } from "./imap-notify.js";
import { followResumedRounds } from "./imap-resume.js";
import { serverSource } from "./imap-server-sync.js";
import { type ImapWriteOptions, imapWriteTarget } from "./imap-write.js";
import { type ImapOptions, imapOptionsSchema, mailboxPageSchema } from "./schemas.js";

export type { ImapFolder } from "./imap-hierarchy.js";
export type { ImapMessage } from "./imap-messages.js";
export type { ImapWriteOptions } from "./imap-write.js";
export type { ImapFetchMode, ImapOptions, ImapSyncMode } from "./schemas.js";

export interface ImapAccount extends Account<ImapMessage> {
  /** `imap:user@host:port`, credential-free. */
  readonly id: string;
  /** The messages of one mailbox, keyed `uidvalidity:uid`. */
  folder(path: string): Syncable<ImapMessage>;
  /** The mailbox list (LIST with special-use), keyed by path; push needs NOTIFY. */
  hierarchy(): Syncable<ImapFolder>;
  /**
   * Every selectable mailbox's messages, as one composite scope. Push: NOTIFY on one connection
   * where the server has it (item and folder hints), else IDLE on the first 10 mailboxes.
   */
  server(): Syncable<ImapMessage>;
  /** Same as `server()`. */
  mail(): Syncable<ImapMessage>;
  /**
   * The write surface of one mailbox for two-way sync (`push`), on this account's connection:
   * flags and the read flag with `UNCHANGEDSINCE`, APPEND with a client-chosen Message-ID,
   * conditional delete, MOVE. See docs/adapters/imap.md.
   */
  writeTarget(path: string, options?: ImapWriteOptions): WriteTarget;
  /** Logs out and ends notification subscriptions; safe to call twice. */
  close(): Promise<void>;
}

/** Opens (lazily) one IMAP account. */
export function createImapAccount(options: ImapOptions): ImapAccount {
  const parsed = imapOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArgumentError(`invalid IMAP options: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  const opts = parsed.data;
  const connection = createImapConnection(opts);
  const id = `imap:${accountLabel(opts)}`;
  // close() also ends every push subscription (each holds its own connection).
  const closing = new Subject<void>();

  const folder = (path: string): Syncable<ImapMessage> => {
    if (!path) throw new ArgumentError("a mailbox path is required");
    const scope = `folder:${path}`;
    return createSyncable<ImapMessage>({
      adapter: "imap",
      scope,
      // Read-ahead keeps pages across calls, which a resumed round can't be told apart by: every
      // round of more than one page is followed by one more (usually one STATUS).
      // UID-range pages list what is there now: a message a crashed page delivered and that was
      // expunged before the resume is in no answer, so pages are marked first (reportsByContent).
      source: {
        ...followResumedRounds(mailboxSource({ connection, path }), mailboxPageSchema, true),
        reportsByContent: true,
      },
      windowKeys: ["daysWithin"],
      notifications: () =>
        idleNotifications(opts, path, scope).pipe(takeUntil(closing)) as Observable<
          Notification<ImapMessage>
        >,
    });
  };

  const server = (): Syncable<ImapMessage> =>
    createSyncable<ImapMessage>({
      adapter: "imap",
      scope: "server",
      source: { ...serverSource(connection), reportsByContent: true },
      windowKeys: ["daysWithin"],
      notifications: (filter) =>
        serverNotifications(opts, () => connection.withClient(listSelectable), filter).pipe(
          takeUntil(closing),
        ) as Observable<Notification<ImapMessage>>,
    });

  return {
    id,
    folder,
    hierarchy: () =>
      createSyncable<ImapFolder>({
        adapter: "imap",
        scope: "hierarchy",
        source: hierarchySource(connection),
        notifications: () =>
          hierarchyNotifications(opts).pipe(takeUntil(closing)) as Observable<
            Notification<ImapFolder>
          >,
      }),
    server,
    mail: server,
    writeTarget: (path, options) => imapWriteTarget(connection, path, options),
    close: () => {
      closing.next();
      return connection.close();
    },
  };
}
