/**
 * People API `people.connections.list` as the account's contacts (PROTOCOLS.md §1.3):
 * `requestSyncToken`, deletions as `metadata.deleted`, expiry as `EXPIRED_SYNC_TOKEN`.
 */
import { z } from "zod";
import { StateError } from "../../src/core/errors.js";
import type { Page, PageRequest } from "../../src/core/source.js";
import type { Change } from "../../src/core/types.js";
import type { HttpClient } from "../../src/http/index.js";
import {
  followUp,
  mapLimit,
  type PageToken,
  PageTokenSchema,
  pageTokenOf,
  unlessMissing,
  type VerifyingSource,
} from "./google-shared.js";
import { ConnectionsPageSchema, type GooglePerson, PersonSchema } from "./schemas.js";

export const PeopleCursorSchema = z.object({
  syncToken: z.string().min(1),
  personFields: z.string(),
});
export type PeopleCursor = z.infer<typeof PeopleCursorSchema>;

/** The page fetcher of `people/me/connections`; `pageSize` is capped at 1000 by Google. */
export function connectionsSource(options: {
  http: HttpClient;
  pageSize: number;
  personFields: string;
  account: (signal: AbortSignal) => Promise<string>;
}): VerifyingSource<PeopleCursor, PageToken> {
  const { http, personFields } = options;
  const pageSize = Math.min(options.pageSize, 1000);
  return {
    cursorSchema: PeopleCursorSchema,
    pageSchema: PageTokenSchema,
    async identity(signal) {
      return `${await options.account(signal)} contacts`;
    },
    /** `people.get` by resourceName: a deleted contact is 404. */
    async verify(keys, req) {
      return mapLimit(keys, 4, async (resourceName) => {
        const res = await unlessMissing(
          http.request({
            path: resourcePath(resourceName),
            query: { personFields },
            schema: PersonSchema,
            endpoint: "people.get",
            signal: req.signal,
          }),
        );
        return personChange(res?.body ?? { resourceName, metadata: { deleted: true } }, false);
      });
    },
    async fetchPage(req: PageRequest<PeopleCursor, PageToken>) {
      // Every parameter must match the call that issued the sync or page token.
      if (req.cursor && req.cursor.personFields !== personFields) {
        throw new StateError(
          `state was made with personFields=${req.cursor.personFields}, not ${personFields}`,
        );
      }
      const res = await http.request({
        path: "people/me/connections",
        query: {
          personFields,
          pageSize,
          requestSyncToken: true,
          syncToken: req.cursor?.syncToken,
          pageToken: pageTokenOf(req.page),
        },
        schema: ConnectionsPageSchema,
        endpoint: "people.connections.list",
        signal: req.signal,
      });
      const created = req.cursor === undefined;
      const changes = res.body.connections.map((p) => personChange(p, created));
      const page: Page<PeopleCursor, PageToken> = { changes };
      if (res.body.nextPageToken !== undefined) page.nextPage = res.body.nextPageToken;
      else if (res.body.nextSyncToken !== undefined) {
        page.newCursor = { syncToken: res.body.nextSyncToken, personFields };
        page.nextPage = followUp(req.page);
      }
      return page;
    },
  };
}

/** `people/c123` as a URL path (each segment escaped). */
function resourcePath(resourceName: string): string {
  return resourceName.split("/").map(encodeURIComponent).join("/");
}

function personChange(person: GooglePerson, created: boolean): Change<GooglePerson> {
  if (person.metadata?.deleted === true) {
    return {
      kind: "delete",
      object: { sourcekey: person.resourceName, type: "user" },
      soft: false,
    };
  }
  return {
    kind: "update",
    object: { sourcekey: person.resourceName, type: "user", changeKey: person.etag, data: person },
    created,
  };
}
