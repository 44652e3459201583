/**
 * zod schemas of the Microsoft Graph responses deltasync reads. Objects are loose: unknown fields
 * reach the importer as the server sent them; only the fields sync depends on are checked.
 */
import { z } from "zod";
import { keptWhole } from "../../src/http/validate.js";

/** `@removed` on a delta item: `deleted` (gone) or `changed` (soft-deleted, directory objects). */
export const RemovedSchema = z.looseObject({ reason: z.string().optional() });

/**
 * One delta item: the object (only `id` is guaranteed on an update), or a removal. Checked in
 * place and passed on whole (`keptWhole`): a loose object schema copied every message, a third
 * of what a delta sync allocated.
 */
export const DeltaItemSchema = keptWhole(
  z.object({ id: z.string().min(1), "@removed": RemovedSchema.optional() }),
);
export type DeltaItem = z.infer<typeof DeltaItemSchema>;

/** One page of a delta round: `@odata.nextLink` (more pages) or `@odata.deltaLink` (round done). */
export const DeltaPageSchema = z.looseObject({
  value: z.array(DeltaItemSchema),
  "@odata.nextLink": z.string().min(1).optional(),
  "@odata.deltaLink": z.string().min(1).optional(),
});
export type DeltaPage = z.infer<typeof DeltaPageSchema>;

/** A plain collection page (`GET /me/calendars`): `value` and maybe `@odata.nextLink`. */
export const ListPageSchema = z.looseObject({
  value: z.array(z.looseObject({ id: z.string().min(1) })),
  "@odata.nextLink": z.string().min(1).optional(),
});

/** A message as selected; every field but `id` is optional (updates may be sparse). */
export type GraphMessage = DeltaItem & {
  subject?: string | null;
  isRead?: boolean;
  parentFolderId?: string;
  receivedDateTime?: string;
  changeKey?: string;
  [key: string]: unknown;
};

/** A mail or contact folder. */
export type GraphFolder = DeltaItem & {
  displayName?: string;
  parentFolderId?: string;
  [key: string]: unknown;
};

/** A calendar (`GET /me/calendars`). */
export type GraphCalendar = {
  id: string;
  name?: string;
  changeKey?: string;
  [key: string]: unknown;
};

/** An event of a calendar view (single instance, occurrence or exception). */
export type GraphEvent = DeltaItem & {
  subject?: string | null;
  type?: string;
  seriesMasterId?: string | null;
  start?: { dateTime?: string; timeZone?: string };
  end?: { dateTime?: string; timeZone?: string };
  changeKey?: string;
  [key: string]: unknown;
};

/** A contact. */
export type GraphContact = DeltaItem & {
  displayName?: string | null;
  parentFolderId?: string;
  changeKey?: string;
  [key: string]: unknown;
};

/** `GET /me`: who the token belongs to (for `identity()`). */
export const UserSchema = z.looseObject({
  id: z.string().min(1),
  userPrincipalName: z.string().optional(),
});

/** A subscription as `POST /subscriptions` and `PATCH /subscriptions/{id}` return it. */
export const SubscriptionSchema = z.looseObject({
  id: z.string().min(1),
  resource: z.string().optional(),
  expirationDateTime: z.string().min(1),
});

/** One change notification. */
export const ChangeNotificationSchema = z.looseObject({
  subscriptionId: z.string().min(1),
  clientState: z.string().nullish(),
  changeType: z.string().optional(),
  resource: z.string().optional(),
  tenantId: z.string().optional(),
  lifecycleEvent: z.string().optional(),
  subscriptionExpirationDateTime: z.string().optional(),
  resourceData: z
    .looseObject({ id: z.string().optional(), "@odata.type": z.string().optional() })
    .nullish(),
});
export type ChangeNotification = z.infer<typeof ChangeNotificationSchema>;

/** A delivery: one or more notifications, possibly of several subscriptions. */
export const NotificationBatchSchema = z.looseObject({
  value: z.array(ChangeNotificationSchema).min(1),
});

/** The error body of every Graph API. */
export const GraphErrorSchema = z.looseObject({
  error: z.looseObject({
    code: z.string().optional(),
    message: z.string().optional(),
    innerError: z.looseObject({ code: z.string().optional() }).optional(),
  }),
});
