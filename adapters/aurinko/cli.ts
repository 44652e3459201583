/**
 * `aurinko:` sources for the CLI.
 *
 *   aurinko:email                  email across every folder
 *   aurinko:calendar/primary       the events of a calendar (any calendar id, URL-encoded)
 *   aurinko:calendars              the calendar list (hierarchy)
 *   aurinko:contacts               contacts
 *   aurinko:tasks/<tasklistId>     the tasks of a task list
 *   aurinko:tasklists              the task lists (hierarchy)
 *
 * Token: DELTASYNC_AURINKO_TOKEN (the account's Aurinko access token). DELTASYNC_AURINKO_BASE_URL
 * replaces `https://api.aurinko.io/v1/` (an emulator).
 */
import type { CliSource } from "../../src/cli/source.js";
import { ArgumentError, AuthError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import { type AurinkoAccount, createAurinkoAccount } from "./index.js";

function pick(account: AurinkoAccount, url: URL): { syncable: Syncable; what: string } {
  const path = url.pathname.replace(/^\/+|\/+$/g, "");
  const [kind, ...rest] = path.split("/");
  const id = decodeURIComponent(rest.join("/"));
  if (rest.length === 0) {
    if (kind === "email") return { syncable: account.mail() as Syncable, what: "email" };
    if (kind === "contacts") return { syncable: account.contacts() as Syncable, what: "contacts" };
    if (kind === "calendars")
      return { syncable: account.calendarList() as Syncable, what: "calendars" };
    if (kind === "tasklists")
      return { syncable: account.taskLists() as Syncable, what: "tasklists" };
  } else if (id !== "") {
    if (kind === "calendar")
      return { syncable: account.calendar(id) as Syncable, what: `calendar/${id}` };
    if (kind === "tasks") return { syncable: account.tasks(id) as Syncable, what: `tasks/${id}` };
  }
  throw new ArgumentError(
    "aurinko: source must be aurinko:email, aurinko:calendar/<id>, aurinko:calendars, " +
      `aurinko:contacts, aurinko:tasks/<id> or aurinko:tasklists, got ${JSON.stringify(url.href)}`,
  );
}

export const cliSource: CliSource = {
  schemes: ["aurinko"],
  usage:
    "aurinko:email | aurinko:calendar/<id> | aurinko:calendars | aurinko:contacts | aurinko:tasks/<id> | aurinko:tasklists (token: DELTASYNC_AURINKO_TOKEN; DELTASYNC_AURINKO_BASE_URL for an emulator)",
  async open(url, { env }) {
    const token = env.DELTASYNC_AURINKO_TOKEN;
    if (!token) throw new AuthError("aurinko: set DELTASYNC_AURINKO_TOKEN to an access token");
    const baseUrl = env.DELTASYNC_AURINKO_BASE_URL;
    if (baseUrl !== undefined) {
      try {
        new URL(baseUrl);
      } catch {
        throw new ArgumentError(
          `aurinko: DELTASYNC_AURINKO_BASE_URL is not a URL: ${JSON.stringify(baseUrl)}`,
        );
      }
    }
    const account = createAurinkoAccount({ accessToken: token, baseUrl });
    try {
      const { syncable, what } = pick(account, url);
      return { syncable, key: `aurinko:${what}`, close: () => account.close() };
    } catch (error) {
      await account.close();
      throw error;
    }
  },
};
