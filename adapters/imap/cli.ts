/**
 * `imap:` / `imaps:` sources for the CLI.
 *
 *   imap://alice@127.0.0.1:143/INBOX         one mailbox (password: --password or
 *                                            DELTASYNC_IMAP_PASSWORD; XOAUTH2: --token or
 *                                            DELTASYNC_IMAP_ACCESS_TOKEN)
 *   imaps://alice@imap.example.com/Archive   implicit TLS (port 993 by default)
 *   imap://alice@host/?scope=server          every mailbox; scope=hierarchy for the mailbox list
 *   imap://alice@host/INBOX?starttls=false   never STARTTLS (default: when offered)
 */
import type { CliSource, OpenedSource } from "../../src/cli/source.js";
import { ArgumentError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import { createImapAccount } from "./index.js";

export const PASSWORD_ENV = "DELTASYNC_IMAP_PASSWORD";
export const TOKEN_ENV = "DELTASYNC_IMAP_ACCESS_TOKEN";
/** Where the CLI copies `--password` / `--token` (`credentialFlags` below). */
const PASSWORD_FLAG_ENV = "DELTASYNC_PASSWORD";
const TOKEN_FLAG_ENV = "DELTASYNC_TOKEN";

/** The credential to log in with: a flag before the IMAP variables, a token before a password. */
export function imapCredential(
  env: Record<string, string | undefined>,
): { accessToken: string } | { password: string } | undefined {
  const token = env[TOKEN_FLAG_ENV];
  const password = env[PASSWORD_FLAG_ENV];
  if (token) return { accessToken: token };
  if (password) return { password };
  if (env[TOKEN_ENV]) return { accessToken: env[TOKEN_ENV] };
  if (env[PASSWORD_ENV]) return { password: env[PASSWORD_ENV] };
  return undefined;
}

/** Parses an `imap(s)://user@host:port/Mailbox` URL into options (without the password). */
export function parseImapUrl(url: URL) {
  const secure = url.protocol === "imaps:";
  if (url.protocol !== "imap:" && url.protocol !== "imaps:") {
    throw new ArgumentError(`imap source: unsupported scheme ${url.protocol}`);
  }
  const user = decodeURIComponent(url.username);
  if (!user) throw new ArgumentError("imap source: the URL needs a user (imap://user@host/INBOX)");
  if (url.password) {
    throw new ArgumentError(`imap source: put the password in ${PASSWORD_ENV}, not in the URL`);
  }
  if (!url.hostname) throw new ArgumentError("imap source: the URL needs a host");
  const port = url.port ? Number(url.port) : secure ? 993 : 143;
  const mailbox = decodeURIComponent(url.pathname.replace(/^\/+/, ""));
  const scope = url.searchParams.get("scope") ?? (mailbox ? "folder" : "server");
  if (!["folder", "server", "hierarchy"].includes(scope)) {
    throw new ArgumentError(
      `imap source: unknown scope ${JSON.stringify(scope)} (folder, server, hierarchy)`,
    );
  }
  if (scope === "folder" && !mailbox) {
    throw new ArgumentError(
      "imap source: name a mailbox (imap://user@host/INBOX) or use ?scope=server",
    );
  }
  const starttls = url.searchParams.get("starttls");
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    host,
    port,
    secure,
    user,
    mailbox,
    scope: scope as "folder" | "server" | "hierarchy",
    ...(starttls !== null ? { starttls: starttls !== "false" } : {}),
    key: `imap:${user}@${host}:${port}/${scope === "folder" ? mailbox : `?scope=${scope}`}`,
  };
}

export const cliSource: CliSource = {
  schemes: ["imap", "imaps"],
  usage:
    "imap[s]://user@host:port/Mailbox[?scope=server|hierarchy] " +
    `(--password or ${PASSWORD_ENV}; XOAUTH2: --token or ${TOKEN_ENV})`,
  credentialFlags: { password: PASSWORD_FLAG_ENV, token: TOKEN_FLAG_ENV },
  async open(url, context): Promise<OpenedSource> {
    const parsed = parseImapUrl(url);
    const credential = imapCredential(context.env);
    if (!credential) {
      // Nothing given is a usage error (exit 2); AuthError is for credentials the server refused.
      throw new ArgumentError(
        `imap source: no credential for ${parsed.user}: pass --password (or set ${PASSWORD_ENV}), ` +
          `or an OAuth2 access token with --token (or ${TOKEN_ENV})`,
      );
    }
    const account = createImapAccount({
      host: parsed.host,
      port: parsed.port,
      secure: parsed.secure,
      user: parsed.user,
      ...credential,
      ...(parsed.starttls !== undefined ? { starttls: parsed.starttls } : {}),
    });
    let syncable: Syncable;
    if (parsed.scope === "server") syncable = account.server();
    else if (parsed.scope === "hierarchy") syncable = account.hierarchy();
    else syncable = account.folder(parsed.mailbox);
    return { syncable, key: parsed.key, close: () => account.close() };
  },
};
