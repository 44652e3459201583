/**
 * `caldav:` / `carddav:` / `dav:` sources for the CLI.
 *
 *   caldav:https://dav.example.com/               every calendar (composite state)
 *   caldav:https://dav.example.com/alice/work/    one calendar
 *   carddav:https://dav.example.com/              every address book
 *   dav:https://dav.example.com/                  the hierarchy (calendars and address books)
 *   caldav:http://127.0.0.1:5232/?scope=hierarchy scope: items (default) | hierarchy
 *   caldavs://host/path, caldav://host/path       shorthands for https:// and http://
 *
 * Credentials: DELTASYNC_DAV_USER (or the URL's user) / DELTASYNC_DAV_PASSWORD (`--password`) for
 * Basic, or DELTASYNC_DAV_TOKEN (`--token`) for a bearer token.
 */
import type { CliSource, OpenedSource } from "../../src/cli/source.js";
import { ArgumentError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { WriteTarget } from "../../src/two-way/types.js";
import { createDavAccount, type DavAccount, davWriteTarget } from "./index.js";

/** Splits `caldav:https://host/path` (or `caldavs://host/path`) into the scheme and the http(s) URL. */
export function innerUrl(url: URL): { scheme: string; target: URL } {
  const scheme = url.protocol.replace(/:$/, "");
  const rest = url.href.slice(url.protocol.length);
  let target: URL;
  try {
    if (/^https?:\/\//i.test(rest)) target = new URL(rest);
    else if (rest.startsWith("//"))
      target = new URL(`${scheme.endsWith("s") ? "https" : "http"}:${rest}`);
    else throw new Error("no URL");
  } catch {
    throw new ArgumentError(
      `${scheme}: source must look like ${scheme}:https://host/path, got ${JSON.stringify(url.href)}`,
    );
  }
  if (target.password) {
    throw new ArgumentError(
      `${scheme}: put the password in DELTASYNC_DAV_PASSWORD, not in the URL`,
    );
  }
  return { scheme, target };
}

async function pick(
  account: DavAccount,
  scheme: string,
  target: URL,
): Promise<{ syncable: Syncable; writeTarget?: WriteTarget }> {
  for (const name of target.searchParams.keys()) {
    if (name !== "scope") {
      throw new ArgumentError(
        `${scheme}: unknown parameter ${JSON.stringify(name)} (known: scope)`,
      );
    }
  }
  const scope =
    target.searchParams.get("scope") ?? (scheme.startsWith("dav") ? "hierarchy" : "items");
  if (scope === "hierarchy") return { syncable: account.hierarchy() };
  if (scope !== "items") {
    throw new ArgumentError(
      `${scheme}: scope must be items or hierarchy, got ${JSON.stringify(scope)}`,
    );
  }
  const kind = scheme.startsWith("card") ? "addressbook" : "calendar";
  const found = await account.discover();
  const path = target.pathname.endsWith("/") ? target.pathname : `${target.pathname}/`;
  const one = found.collections.find((c) => c.href === path);
  if (one) {
    // One collection can be written (push); every calendar or book at once can't.
    const extension = one.kind === "addressbook" ? ".vcf" : ".ics";
    return {
      syncable: account.collection(one.href),
      writeTarget: davWriteTarget(account, one.href, { extension }),
    };
  }
  return { syncable: kind === "calendar" ? account.calendars() : account.contacts() };
}

export const cliSource: CliSource = {
  schemes: ["caldav", "caldavs", "carddav", "carddavs", "dav", "davs"],
  usage:
    "caldav:https://host/[calendar/] | carddav:https://host/[book/] | dav:https://host/ (hierarchy) " +
    "(DELTASYNC_DAV_USER / DELTASYNC_DAV_PASSWORD, or DELTASYNC_DAV_TOKEN)",
  credentialFlags: { password: "DELTASYNC_DAV_PASSWORD", token: "DELTASYNC_DAV_TOKEN" },
  async open(url, { env }): Promise<OpenedSource> {
    const { scheme, target } = innerUrl(url);
    const username =
      env.DELTASYNC_DAV_USER ?? (target.username ? decodeURIComponent(target.username) : undefined);
    const token = env.DELTASYNC_DAV_TOKEN;
    if (!token && env.DELTASYNC_DAV_PASSWORD && !username) {
      throw new ArgumentError(
        `${scheme}: a password needs a user: ${scheme}:https://user@host/… or DELTASYNC_DAV_USER`,
      );
    }
    const server = new URL(target.href);
    server.username = "";
    server.search = "";
    const account = createDavAccount({
      url: server.href,
      username: token ? undefined : username,
      password: token ? undefined : env.DELTASYNC_DAV_PASSWORD,
      accessToken: token,
    });
    try {
      const { syncable, writeTarget } = await pick(account, scheme, target);
      const user = username ? `${username}@` : "";
      return {
        syncable,
        ...(writeTarget ? { writeTarget } : {}),
        key: `${scheme}:${user}${server.host}${server.pathname}${syncable.scope === "hierarchy" ? "#hierarchy" : ""}`,
        close: () => account.close(),
      };
    } catch (error) {
      await account.close();
      throw error;
    }
  },
};
