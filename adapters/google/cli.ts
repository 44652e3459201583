/**
 * `google:` sources for the CLI.
 *
 *   google:calendar/primary              the events of a calendar (any calendar id, URL-encoded)
 *   google:calendar/primary?singleEvents=true
 *   google:calendars                     the calendar list (hierarchy)
 *   google:contacts                      People connections
 *   google:gmail                         the Gmail mailbox (history)
 *
 * Credentials: DELTASYNC_GOOGLE_TOKEN (an OAuth access token; `--token`), or, for runs that
 * outlive an access token (`watch`), DELTASYNC_GOOGLE_REFRESH_TOKEN with
 * DELTASYNC_GOOGLE_CLIENT_ID / DELTASYNC_GOOGLE_CLIENT_SECRET: the access token is then refreshed
 * through the client's `getAccessToken` (on expiry and after a 401). DELTASYNC_GOOGLE_BASE_URL
 * points every API at one root and DELTASYNC_GOOGLE_TOKEN_URL the refresh (an emulator).
 */
import type { CliSource } from "../../src/cli/source.js";
import { ArgumentError, AuthError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import { createHttpClient } from "../../src/http/http-client.js";
import type { WriteTarget } from "../../src/two-way/types.js";
import { createGoogleAccount, type GoogleAccount } from "./index.js";

const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";
const PARAMS = new Set(["singleEvents"]);

interface RefreshConfig {
  refreshToken: string;
  clientId: string;
  clientSecret: string;
  tokenUrl: string;
}

/**
 * `getAccessToken` for an OAuth refresh token (RFC 6749 §6): a cached access token, renewed a
 * minute before it expires or when the HTTP client asks after a 401. Concurrent callers share
 * one refresh.
 */
export function refreshingToken(
  config: RefreshConfig,
  initial?: string,
): { getAccessToken(opts: { forceRefresh: boolean }): Promise<string>; close(): Promise<void> } {
  const url = new URL(config.tokenUrl);
  const http = createHttpClient({
    baseUrl: url.origin,
    retry: { retries: 2 },
    classify: (r) => {
      if (r.status !== 400 && r.status !== 401) return undefined;
      let reason = "";
      try {
        const body = JSON.parse(r.text) as { error?: unknown; error_description?: unknown };
        reason = [body.error, body.error_description]
          .filter((x) => typeof x === "string")
          .join(": ");
      } catch {}
      return new AuthError(
        `google: the refresh token was refused (${reason || `HTTP ${r.status}`})`,
      );
    },
  });
  let token = initial;
  let expiresAt = Number.POSITIVE_INFINITY; // a given access token is used until a 401
  let pending: Promise<string> | undefined;
  const refresh = async (): Promise<string> => {
    const body = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: config.refreshToken,
      client_id: config.clientId,
      client_secret: config.clientSecret,
    });
    const res = await http.request<{ access_token: string; expires_in?: number }>({
      method: "POST",
      path: url.href,
      endpoint: "oauth2.token",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: body.toString(),
      idempotent: true, // a refresh grant may be repeated
    });
    const parsed = JSON.parse(res.text ?? "{}") as { access_token?: unknown; expires_in?: unknown };
    if (typeof parsed.access_token !== "string") {
      throw new AuthError("google: the token endpoint answered without an access_token");
    }
    token = parsed.access_token;
    const ttl = typeof parsed.expires_in === "number" ? parsed.expires_in : 3600;
    expiresAt = Date.now() + Math.max(ttl - 60, 0) * 1000;
    return token;
  };
  return {
    getAccessToken({ forceRefresh }) {
      if (!forceRefresh && token !== undefined && Date.now() < expiresAt) {
        return Promise.resolve(token);
      }
      pending ??= refresh().finally(() => {
        pending = undefined;
      });
      return pending;
    },
    close: () => http.close(),
  };
}

/** The refresh-token configuration from the environment, or undefined when none is set. */
function refreshConfig(env: Record<string, string | undefined>): RefreshConfig | undefined {
  const refreshToken = env.DELTASYNC_GOOGLE_REFRESH_TOKEN;
  if (!refreshToken) return undefined;
  const clientId = env.DELTASYNC_GOOGLE_CLIENT_ID;
  const clientSecret = env.DELTASYNC_GOOGLE_CLIENT_SECRET;
  if (!clientId || !clientSecret) {
    throw new ArgumentError(
      "google: DELTASYNC_GOOGLE_REFRESH_TOKEN needs DELTASYNC_GOOGLE_CLIENT_ID and DELTASYNC_GOOGLE_CLIENT_SECRET",
    );
  }
  const tokenUrl = env.DELTASYNC_GOOGLE_TOKEN_URL ?? GOOGLE_TOKEN_URL;
  checkUrl("DELTASYNC_GOOGLE_TOKEN_URL", tokenUrl);
  return { refreshToken, clientId, clientSecret, tokenUrl };
}

function checkUrl(name: string, value: string): void {
  try {
    new URL(value);
  } catch {
    throw new ArgumentError(`google: ${name} is not a URL: ${JSON.stringify(value)}`);
  }
}

function pick(
  account: GoogleAccount,
  url: URL,
): { syncable: Syncable; what: string; writeTarget?: WriteTarget } {
  const path = url.pathname.replace(/^\/+|\/+$/g, "");
  const [kind, ...rest] = path.split("/");
  if (kind === "calendar" && rest.length > 0) {
    const id = decodeURIComponent(rest.join("/"));
    return {
      syncable: account.calendar(id) as Syncable,
      what: `calendar/${id}`,
      writeTarget: account.calendarWriteTarget(id),
    };
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
    "google:calendar/<id> | google:calendars | google:contacts | google:gmail (DELTASYNC_GOOGLE_TOKEN, or DELTASYNC_GOOGLE_REFRESH_TOKEN + _CLIENT_ID + _CLIENT_SECRET; DELTASYNC_GOOGLE_BASE_URL for an emulator)",
  credentialFlags: { token: "DELTASYNC_GOOGLE_TOKEN" },
  async open(url, { env }) {
    for (const name of url.searchParams.keys()) {
      if (!PARAMS.has(name)) {
        throw new ArgumentError(
          `google: unknown parameter ${JSON.stringify(name)} (known: ${[...PARAMS].join(", ")})`,
        );
      }
    }
    const singleEvents = url.searchParams.get("singleEvents");
    if (singleEvents !== null && singleEvents !== "true" && singleEvents !== "false") {
      throw new ArgumentError(
        `google: singleEvents must be true or false, got ${JSON.stringify(singleEvents)}`,
      );
    }
    const accessToken = env.DELTASYNC_GOOGLE_TOKEN || undefined;
    const refresh = refreshConfig(env);
    if (!accessToken && !refresh) {
      throw new ArgumentError(
        "google: no credentials: set DELTASYNC_GOOGLE_TOKEN (or --token) to an OAuth access token, or DELTASYNC_GOOGLE_REFRESH_TOKEN with DELTASYNC_GOOGLE_CLIENT_ID and DELTASYNC_GOOGLE_CLIENT_SECRET",
      );
    }
    const baseUrl = env.DELTASYNC_GOOGLE_BASE_URL;
    if (baseUrl !== undefined) checkUrl("DELTASYNC_GOOGLE_BASE_URL", baseUrl);
    const tokens = refresh ? refreshingToken(refresh, accessToken) : undefined;
    const account = createGoogleAccount({
      ...(tokens ? { getAccessToken: tokens.getAccessToken } : { accessToken }),
      baseUrl,
      singleEvents: singleEvents === "true",
    });
    const close = async () => {
      await account.close();
      await tokens?.close();
    };
    try {
      const { syncable, what, writeTarget } = pick(account, url);
      const suffix = singleEvents === "true" ? "?singleEvents=true" : "";
      return {
        syncable,
        ...(writeTarget ? { writeTarget } : {}),
        key: `google:${what}${suffix}`,
        close,
      };
    } catch (error) {
      await close();
      throw error;
    }
  },
};
