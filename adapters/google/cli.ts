/**
 * `google:` sources for the CLI.
 *
 *   google:calendar/primary              the events of a calendar (any calendar id, URL-encoded)
 *   google:calendar/primary?singleEvents=true
 *   google:calendars                     the calendar list (hierarchy)
 *   google:contacts                      People connections
 *   google:gmail                         the Gmail mailbox (history)
 *
 * Token: DELTASYNC_GOOGLE_TOKEN (an OAuth access token). DELTASYNC_GOOGLE_BASE_URL points every
 * API at one root (an emulator).
 */
import type { CliSource } from "../../src/cli/source.js";
import { ArgumentError, AuthError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import { createGoogleAccount, type GoogleAccount } from "./index.js";

function pick(account: GoogleAccount, url: URL): { syncable: Syncable; what: string } {
  const path = url.pathname.replace(/^\/+|\/+$/g, "");
  const [kind, ...rest] = path.split("/");
  if (kind === "calendar" && rest.length > 0) {
    const id = decodeURIComponent(rest.join("/"));
    return { syncable: account.calendar(id) as Syncable, what: `calendar/${id}` };
  }
  if (kind === "calendars" && rest.length === 0)
    return { syncable: account.calendarList() as Syncable, what: "calendars" };
  if (kind === "contacts" && rest.length === 0)
    return { syncable: account.contacts() as Syncable, what: "contacts" };
  if (kind === "gmail" && rest.length === 0)
    return { syncable: account.mail() as Syncable, what: "gmail" };
  throw new ArgumentError(
    `google: source must be google:calendar/<id>, google:calendars, google:contacts or google:gmail, got ${JSON.stringify(url.href)}`,
  );
}

export const cliSource: CliSource = {
  schemes: ["google"],
  usage:
    "google:calendar/<id> | google:calendars | google:contacts | google:gmail (token: DELTASYNC_GOOGLE_TOKEN; DELTASYNC_GOOGLE_BASE_URL for an emulator)",
  async open(url, { env }) {
    const token = env.DELTASYNC_GOOGLE_TOKEN;
    if (!token) throw new AuthError("google: set DELTASYNC_GOOGLE_TOKEN to an OAuth access token");
    const singleEvents = url.searchParams.get("singleEvents");
    if (singleEvents !== null && singleEvents !== "true" && singleEvents !== "false") {
      throw new ArgumentError(
        `google: singleEvents must be true or false, got ${JSON.stringify(singleEvents)}`,
      );
    }
    const baseUrl = env.DELTASYNC_GOOGLE_BASE_URL;
    if (baseUrl !== undefined) {
      try {
        new URL(baseUrl);
      } catch {
        throw new ArgumentError(
          `google: DELTASYNC_GOOGLE_BASE_URL is not a URL: ${JSON.stringify(baseUrl)}`,
        );
      }
    }
    const account = createGoogleAccount({
      accessToken: token,
      baseUrl,
      singleEvents: singleEvents === "true",
    });
    try {
      const { syncable, what } = pick(account, url);
      const suffix = singleEvents === "true" ? "?singleEvents=true" : "";
      return { syncable, key: `google:${what}${suffix}`, close: () => account.close() };
    } catch (error) {
      await account.close();
      throw error;
    }
  },
};
