/**
 * The parts of Aurinko's responses the adapter relies on (PROTOCOLS.md §7, Aurinko's OpenAPI).
 * Records are checked field by field and kept whole (`keptWhole`): the importer gets every field
 * Aurinko sent.
 */
import { z } from "zod";
import { keptWhole } from "../../src/http/validate.js";

/** `POST …/sync`: the two delta tokens, once Aurinko has finished setting the sync up. */
export const SyncStartSchema = z.looseObject({
  ready: z.boolean(),
  syncUpdatedToken: z.string().min(1).optional(),
  syncDeletedToken: z.string().min(1).optional(),
});
export type SyncStart = z.infer<typeof SyncStartSchema>;

/**
 * One page of `…/sync/updated` or `…/sync/deleted`. Its records are checked one by one when
 * they are mapped (by their kind's schema; deleted ones for their id).
 */
export const SyncPageSchema = keptWhole(
  z.object({
    records: z.array(z.unknown()),
    nextPageToken: z.string().min(1).optional(),
    nextDeltaToken: z.string().min(1).optional(),
    length: z.number().int().nonnegative().optional(),
  }),
);
export type SyncPage = z.infer<typeof SyncPageSchema>;

/** An email message (the fields deltasync reads; the rest is kept). */
export const MessageSchema = keptWhole(
  z.object({
    id: z.string().min(1),
    threadId: z.string().optional(),
    folderId: z.string().optional(),
    subject: z.string().optional(),
    /** `unread`, `flagged`, `important`, folder labels such as `inbox`, `sent`, `trash`. */
    sysLabels: z.array(z.string()).optional(),
    keywords: z.array(z.string()).optional(),
    receivedAt: z.string().optional(),
    etag: z.string().optional(),
  }),
);
export type AurinkoMessage = z.infer<typeof MessageSchema>;

const EventTimeSchema = z.looseObject({
  dateTime: z.string().optional(),
  date: z.string().optional(),
  timezone: z.string().optional(),
});

/** A calendar event. */
export const EventSchema = keptWhole(
  z.object({
    id: z.string().min(1),
    etag: z.string().optional(),
    subject: z.string().optional(),
    start: EventTimeSchema.optional(),
    end: EventTimeSchema.optional(),
  }),
);
export type AurinkoEvent = z.infer<typeof EventSchema>;

/** A contact. */
export const ContactSchema = keptWhole(
  z.object({ id: z.string().min(1), etag: z.string().optional() }),
);
export type AurinkoContact = z.infer<typeof ContactSchema>;

/** A task. */
export const TaskSchema = keptWhole(
  z.object({
    id: z.string().min(1),
    etag: z.string().optional(),
    title: z.string().optional(),
    status: z.string().optional(),
  }),
);
export type AurinkoTask = z.infer<typeof TaskSchema>;

/** The answer of a create (201 `{id, etag, record}`); `record` also alone, as PATCH answers. */
export const WriteRecordSchema = z.looseObject({
  id: z.string().min(1),
  etag: z.string().optional(),
  record: z.looseObject({ id: z.string().min(1), etag: z.string().optional() }).optional(),
});

/** A calendar of `GET /calendars` or a task list of `GET /tasklists`. */
export const FolderSchema = z.looseObject({ id: z.string().min(1) });
export type AurinkoFolder = z.infer<typeof FolderSchema>;

export const FolderPageSchema = z.looseObject({
  records: z.array(FolderSchema),
  nextPageToken: z.string().min(1).optional(),
});

/** `GET /account`: who the token belongs to. */
export const AccountInfoSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  serviceType: z.string().optional(),
  email: z.string().optional(),
});

/** Error bodies: `{code, message, requestId}`. */
export const ErrorBodySchema = z.looseObject({
  code: z.string().optional(),
  message: z.string().optional(),
  requestId: z.string().optional(),
});

/** `POST /subscriptions` and `GET /subscriptions/{id}`. */
export const SubscriptionSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  resource: z.string().optional(),
  notificationUrl: z.string().optional(),
  active: z.boolean().optional(),
});

/** One webhook delivery. */
export const DeliverySchema = z.looseObject({
  subscription: z.union([z.string(), z.number()]).transform(String),
  resource: z.string().optional(),
  accountId: z.union([z.string(), z.number()]).transform(String).optional(),
  payloads: z
    .array(
      z.looseObject({
        id: z.string().min(1),
        changeType: z.string().optional(),
        attributes: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .optional(),
  lifecycleEvent: z.string().optional(),
  error: z.unknown().optional(),
});
export type AurinkoDelivery = z.infer<typeof DeliverySchema>;
