/**
 * How an adapter plugs into the `deltasync` CLI: each adapter folder has a `cli.ts` exporting
 * `cliSource`, and the registry (registry.ts) maps URL schemes to it.
 */
import type { Syncable } from "../core/syncable.js";
import type { WriteTarget } from "../two-way/types.js";

export interface OpenedSource {
  /** The scope the URL names. */
  syncable: Syncable;
  /** A credential-free key for state files, locks and logs, e.g. `imap:alice@127.0.0.1:143/INBOX`. */
  key: string;
  /**
   * Where `deltasync push` writes the mirror's local edits; absent when the scope can't be
   * written (a hierarchy, a server-wide scope, an adapter without a write surface).
   */
  writeTarget?: WriteTarget;
  /** Closes connections and servers the source opened. */
  close(): Promise<void>;
}

export interface CliSource {
  /** URL schemes handled, without the colon: `["imap", "imaps"]`. */
  schemes: readonly string[];
  /** One line for `deltasync --help`, e.g. `imap://user@host:port/Mailbox (password: DELTASYNC_IMAP_PASSWORD)`. */
  usage: string;
  /**
   * The environment variable the CLI's generic `--password` / `--token` flags set for this
   * adapter, e.g. `{ password: "DELTASYNC_IMAP_PASSWORD", token: "DELTASYNC_IMAP_TOKEN" }`. A flag
   * not listed here is refused with a bad-argument error rather than silently ignored.
   */
  credentialFlags?: { password?: string; token?: string };
  /**
   * Opens the source. Credentials come from `env` (flags are copied into it, see
   * `credentialFlags`); never put them in errors or `key`. Throw `ArgumentError` for a malformed
   * URL or missing credentials, `AuthError` only for credentials the server rejected.
   */
  open(
    url: URL,
    context: { env: Record<string, string | undefined>; signal?: AbortSignal },
  ): Promise<OpenedSource>;
}
