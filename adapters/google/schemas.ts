/**
 * zod schemas of the Google responses deltasync reads. Objects are loose: unknown fields are
 * kept (they reach the importer), only the fields sync depends on are checked. Records (events,
 * calendars, people, messages) are checked in place and passed on whole (`keptWhole`) rather
 * than copied by a loose object schema: on pages of hundreds the copies were most of the garbage.
 */
import { z } from "zod";
import { keptWhole } from "../../src/http/validate.js";

/**
 * Calendar v3 `Event`; a cancelled one is only guaranteed to carry `id`. Only the fields sync
 * reads are validated (a 100k-event sync spends its time here otherwise); every other field is
 * passed through to the importer as the server sent it.
 */
export const EventSchema = keptWhole(
  z.object({
    id: z.string().min(1),
    status: z.string().optional(),
    etag: z.string().optional(),
    recurringEventId: z.string().optional(),
  }),
);
/** An event as Google sent it: the validated fields, plus everything else unvalidated. */
export type GoogleEvent = z.infer<typeof EventSchema> & {
  summary?: unknown;
  start?: unknown;
  end?: unknown;
  originalStartTime?: unknown;
};

/** `events.list`: a page carries `nextPageToken` or (on the last page) `nextSyncToken`. */
export const EventsPageSchema = z.looseObject({
  items: z.array(EventSchema).default([]),
  nextPageToken: z.string().optional(),
  nextSyncToken: z.string().optional(),
});

/** Calendar v3 `CalendarListEntry`; removed entries come back with `deleted: true`. */
export const CalendarListEntrySchema = keptWhole(
  z.object({
    id: z.string().min(1),
    etag: z.string().optional(),
    summary: z.string().optional(),
    deleted: z.boolean().optional(),
    hidden: z.boolean().optional(),
    accessRole: z.string().optional(),
    primary: z.boolean().optional(),
  }),
);
export type GoogleCalendarListEntry = z.infer<typeof CalendarListEntrySchema>;

export const CalendarListPageSchema = z.looseObject({
  items: z.array(CalendarListEntrySchema).default([]),
  nextPageToken: z.string().optional(),
  nextSyncToken: z.string().optional(),
});

/** People API `Person`; a deleted one (`metadata.deleted`) only has a reliable `resourceName`. */
export const PersonSchema = keptWhole(
  z.object({
    resourceName: z.string().min(1),
    etag: z.string().optional(),
    metadata: z.looseObject({ deleted: z.boolean().optional() }).optional(),
  }),
);
export type GooglePerson = z.infer<typeof PersonSchema>;

export const ConnectionsPageSchema = z.looseObject({
  connections: z.array(PersonSchema).default([]),
  nextPageToken: z.string().optional(),
  nextSyncToken: z.string().optional(),
  totalItems: z.number().optional(),
});

/** Gmail `Message` (format=metadata or full). */
export const MessageSchema = keptWhole(
  z.object({
    id: z.string().min(1),
    threadId: z.string().optional(),
    labelIds: z.array(z.string()).optional(),
    snippet: z.string().optional(),
    historyId: z.string().optional(),
    internalDate: z.string().optional(),
  }),
);
export type GmailMessage = z.infer<typeof MessageSchema>;

const messageRef = z.looseObject({ id: z.string().min(1), threadId: z.string().optional() });

export const MessagesListSchema = z.looseObject({
  messages: z.array(messageRef).default([]),
  nextPageToken: z.string().optional(),
  resultSizeEstimate: z.number().optional(),
});

export const ProfileSchema = z.looseObject({
  emailAddress: z.string().optional(),
  historyId: z.string().min(1),
});

const labelChange = z.looseObject({
  message: messageRef,
  labelIds: z.array(z.string()).default([]),
});

export const HistoryRecordSchema = z.looseObject({
  id: z.string(),
  messagesAdded: z.array(z.looseObject({ message: messageRef })).optional(),
  messagesDeleted: z.array(z.looseObject({ message: messageRef })).optional(),
  labelsAdded: z.array(labelChange).optional(),
  labelsRemoved: z.array(labelChange).optional(),
});
export type GmailHistoryRecord = z.infer<typeof HistoryRecordSchema>;

export const HistoryPageSchema = z.looseObject({
  history: z.array(HistoryRecordSchema).default([]),
  nextPageToken: z.string().optional(),
  historyId: z.string().min(1),
});

/** `events.watch` response (`api#channel`); `expiration` is epoch ms as a string. */
export const ChannelSchema = z.looseObject({
  id: z.string().min(1),
  resourceId: z.string().min(1),
  resourceUri: z.string().optional(),
  expiration: z.union([z.string(), z.number()]).optional(),
});

/** An int64 that Google sends as a JSON string (documented) or a number (seen in push data). */
const int64 = z
  .union([z.string().regex(/^\d+$/, "expected a decimal integer"), z.number().int().nonnegative()])
  .transform(String);

/** Gmail `users.watch` response: the mailbox `historyId` and `expiration` in epoch ms. */
export const WatchResponseSchema = z.looseObject({
  historyId: int64,
  expiration: int64,
});

/** A Cloud Pub/Sub push delivery in the default (wrapped) envelope. */
export const PubSubPushSchema = z.looseObject({
  message: z.looseObject({
    /** base64 of the publisher's payload. */
    data: z.string().min(1),
    messageId: z.string().min(1),
    publishTime: z.string().optional(),
    attributes: z.record(z.string(), z.string()).optional(),
  }),
  subscription: z.string().min(1),
});

/** What Gmail publishes: whose mailbox changed and its history id at that moment. */
export const GmailPushDataSchema = z.looseObject({
  emailAddress: z.string().min(1),
  historyId: int64,
});

/** The error body every Google API answers with. */
export const GoogleErrorSchema = z.looseObject({
  error: z.looseObject({
    code: z.number().optional(),
    message: z.string().optional(),
    status: z.string().optional(),
    errors: z
      .array(
        z.looseObject({
          domain: z.string().optional(),
          reason: z.string().optional(),
          location: z.string().optional(),
        }),
      )
      .optional(),
    details: z.array(z.looseObject({ reason: z.string().optional() })).optional(),
  }),
});
