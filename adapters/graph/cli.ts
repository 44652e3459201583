/**
 * `graph:` sources for the CLI.
 *
 *   graph:mail                    every mail folder's messages
 *   graph:folder/inbox            one mail folder (an id or a well-known name)
 *   graph:folders                 the mail folder hierarchy
 *   graph:calendar/primary        a calendar view (`primary`: the default calendar)
 *   graph:calendars               the calendar list
 *   graph:contacts                every contact folder's contacts
 *   graph:contact-folders         the contact folder hierarchy
 *
 * Token: DELTASYNC_GRAPH_TOKEN (an OAuth access token for Microsoft Graph). DELTASYNC_GRAPH_USER
 * reads another mailbox (application permissions); DELTASYNC_GRAPH_BASE_URL points at another
 * root (an emulator, a national cloud).
 */
import type { CliSource } from "../../src/cli/source.js";
import { ArgumentError, AuthError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import { createGraphAccount, type GraphAccount } from "./index.js";

const USAGE =
  "graph:mail | graph:folder/<id> | graph:folders | graph:calendar/<id> | graph:calendars | graph:contacts | graph:contact-folders";

function pick(account: GraphAccount, url: URL): { syncable: Syncable; what: string } {
  const [kind, ...rest] = url.pathname.replace(/^\/+|\/+$/g, "").split("/");
  const id = rest.length ? decodeURIComponent(rest.join("/")) : undefined;
  if (kind === "folder" && id)
    return { syncable: account.folder(id) as Syncable, what: `folder/${id}` };
  if (kind === "calendar" && id)
    return { syncable: account.calendar(id) as Syncable, what: `calendar/${id}` };
  if (id === undefined) {
    const scopes: Record<string, () => Syncable> = {
      mail: () => account.mail() as Syncable,
      folders: () => account.mailFolders() as Syncable,
      calendars: () => account.calendars() as Syncable,
      contacts: () => account.contacts() as Syncable,
      "contact-folders": () => account.contactFolders() as Syncable,
    };
    const make = kind === undefined ? undefined : scopes[kind];
    if (make) return { syncable: make(), what: kind as string };
  }
  throw new ArgumentError(`graph: source must be ${USAGE}, got ${JSON.stringify(url.href)}`);
}

export const cliSource: CliSource = {
  schemes: ["graph"],
  usage: `${USAGE} (token: DELTASYNC_GRAPH_TOKEN; DELTASYNC_GRAPH_USER, DELTASYNC_GRAPH_BASE_URL)`,
  async open(url, { env }) {
    const token = env.DELTASYNC_GRAPH_TOKEN;
    if (!token) throw new AuthError("graph: set DELTASYNC_GRAPH_TOKEN to an OAuth access token");
    const baseUrl = env.DELTASYNC_GRAPH_BASE_URL;
    if (baseUrl !== undefined) {
      try {
        new URL(baseUrl);
      } catch {
        throw new ArgumentError(
          `graph: DELTASYNC_GRAPH_BASE_URL is not a URL: ${JSON.stringify(baseUrl)}`,
        );
      }
    }
    const user = env.DELTASYNC_GRAPH_USER || undefined;
    const account = createGraphAccount({ accessToken: token, baseUrl, user });
    try {
      const { syncable, what } = pick(account, url);
      return {
        syncable,
        key: `graph:${user ? `${user}/` : ""}${what}`,
        close: () => account.close(),
      };
    } catch (error) {
      await account.close();
      throw error;
    }
  },
};
