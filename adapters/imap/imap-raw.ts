/**
 * The few imapflow internals that NOTIFY push (RFC 5465) and conditional STORE (RFC 7162
 * `UNCHANGEDSINCE`, whose `[MODIFIED]` answer imapflow drops) need, in one place. imapflow has no
 * public API to send a command it does not know (`NOTIFY SET`) or to see unsolicited responses
 * it does not handle itself (`* STATUS` and `* LIST` during IDLE, `* OK [NOTIFICATIONOVERFLOW]`),
 * so this module uses its `exec`, `untaggedHandlers` and `sectionHandlers` members and its
 * response helpers (`imapflow/lib/...`). imapflow is pinned (2.10.2) in package.json, and
 * `rawImap` checks every member at run time: an upgrade that drops one fails with
 * `NotSupportedError`, never silently. Nothing here parses IMAP: it reads imapflow's parsed
 * attributes the way imapflow's own `commands/status.js` and `commands/list.js` do.
 */
import type { ImapFlow } from "imapflow";
import type { ImapAttribute, ImapAttributeList, ImapResponse } from "imapflow/lib/handler/types.js";
import { NotSupportedError } from "../../src/core/errors.js";

/** A mailbox's counters from a `* STATUS` response; only the items the server sent. */
export interface StatusCounts {
  messages?: number;
  uidNext?: number;
  uidValidity?: bigint;
  highestModseq?: bigint;
  unseen?: number;
}

/** One `* STATUS` response. */
export interface StatusResponse extends StatusCounts {
  path: string;
}

/** One `* LIST` response (RFC 5465 §5.4: MailboxName and SubscriptionChange events). */
export interface ListResponse {
  path: string;
  delimiter: string;
  flags: string[];
  /** The previous name of a renamed mailbox (the `OLDNAME` extended item, RFC 5258 §3.5). */
  oldPath?: string;
}

/** The narrow, typed surface over imapflow's internals. */
export interface RawImap {
  /**
   * Runs one command; resolves on OK, rejects with imapflow's error on NO / BAD / a drop.
   * `onStatus` sees the `* STATUS` responses sent before the command's tagged OK.
   */
  command(
    name: string,
    attributes: unknown[],
    onStatus?: (status: StatusResponse) => void,
  ): Promise<void>;
  /**
   * Runs one command and resolves with the response code of its tagged OK, upper-cased, with
   * its arguments (`["MODIFIED", "7"]` for `OK [MODIFIED 7]`, RFC 7162 §3.1.3); empty when none.
   */
  tagged(name: string, attributes: unknown[]): Promise<string[]>;
  /** Sees every `* STATUS` that no running command claims (e.g. while idling), until close. */
  onStatus(handler: (status: StatusResponse) => void): void;
  /** Sees every `* LIST` that no running command claims, until close. */
  onList(handler: (list: ListResponse) => void): void;
  /** Sees every response carrying the response code `code` (e.g. `NOTIFICATIONOVERFLOW`). */
  onResponseCode(code: string, handler: () => void): void;
}

type UntaggedHandler = (untagged: ImapResponse) => Promise<void> | void;

interface Internals {
  exec(
    command: string,
    attributes: unknown,
    options?: object,
  ): Promise<{ next(): void; response?: ImapResponse } | undefined>;
  untaggedHandlers: Record<string, UntaggedHandler | null | undefined>;
  sectionHandlers: Record<string, ((section: ImapAttributeList) => unknown) | undefined>;
}

interface Helpers {
  decodePath(connection: ImapFlow, path: string | undefined): string;
  normalizePath(connection: ImapFlow, path: string): string;
  getStringValue(attribute: unknown): string | undefined;
  getStringList(list: unknown): string[];
  parseStatusList(
    list: ImapAttributeList,
    onField: (key: string, value: number | bigint) => void,
  ): void;
}

let helpers: Promise<Helpers | undefined> | undefined;

/** imapflow's own response helpers, or undefined when this imapflow no longer has them. */
function loadHelpers(): Promise<Helpers | undefined> {
  helpers ??= Promise.all([
    import("imapflow/lib/tools.js"),
    import("imapflow/lib/commands/status-fields.js"),
  ]).then(
    ([tools, fields]) => {
      const h = {
        decodePath: tools.decodePath,
        normalizePath: tools.normalizePath,
        getStringValue: tools.getStringValue,
        getStringList: tools.getStringList,
        parseStatusList: fields.parseStatusList,
      } as Partial<Helpers>;
      return Object.values(h).every((f) => typeof f === "function") ? (h as Helpers) : undefined;
    },
    () => undefined,
  );
  return helpers;
}

function hasInternals(client: unknown): client is Internals {
  const c = client as Partial<Internals> | null;
  return (
    typeof c?.exec === "function" &&
    typeof c.untaggedHandlers === "object" &&
    c.untaggedHandlers !== null &&
    typeof c.sectionHandlers === "object" &&
    c.sectionHandlers !== null
  );
}

/**
 * The raw-command surface of `client`.
 * @throws NotSupportedError when this imapflow lacks an internal the wrapper relies on.
 */
export async function rawImap(client: ImapFlow): Promise<RawImap> {
  const h = await loadHelpers();
  if (!hasInternals(client) || !h) {
    throw new NotSupportedError(
      "IMAP NOTIFY: this imapflow version lacks the internals deltasync uses for raw commands " +
        "(exec, untaggedHandlers, sectionHandlers, lib/tools.js, lib/commands/status-fields.js); " +
        "deltasync is tested with imapflow 2.10.2",
    );
  }
  const internals: Internals = client;
  const mailboxPath = (attribute: ImapAttribute | undefined, delimiter?: string): string => {
    let path = h.normalizePath(client, h.decodePath(client, h.getStringValue(attribute) ?? ""));
    // Some servers prefix the path with the delimiter; imapflow's LIST strips it too.
    if (delimiter && path.startsWith(delimiter)) path = path.slice(1);
    return path;
  };
  const statusHandler =
    (handler: (status: StatusResponse) => void): UntaggedHandler =>
    (untagged) => {
      const attrs = untagged.attributes ?? [];
      const list = attrs[1];
      if (!Array.isArray(list)) return;
      const status: StatusResponse = { path: mailboxPath(attrs[0]) };
      h.parseStatusList(list, (key, value) => {
        (status as unknown as Record<string, number | bigint>)[key] = value;
      });
      handler(status);
    };
  return {
    async command(name, attributes, onStatus) {
      // Handlers given to `exec` take precedence over the connection's while it runs.
      const untagged = onStatus ? { STATUS: statusHandler(onStatus) } : {};
      const response = await internals.exec(name, attributes, { untagged });
      // imapflow parks its reader until the tagged response is released.
      response?.next();
    },
    async tagged(name, attributes) {
      const response = await internals.exec(name, attributes);
      response?.next();
      const first = response?.response?.attributes?.[0] as { section?: unknown[] } | undefined;
      const section = Array.isArray(first?.section) ? first.section : [];
      return section.map((a, i) => {
        const text = h.getStringValue(a) ?? String((a as { value?: unknown })?.value ?? "");
        return i === 0 ? text.toUpperCase() : text;
      });
    },
    onStatus(handler) {
      internals.untaggedHandlers.STATUS = statusHandler(handler);
    },
    onList(handler) {
      internals.untaggedHandlers.LIST = (untagged) => {
        const attrs = untagged.attributes ?? [];
        const delimiter = h.getStringValue(attrs[1]) ?? "";
        const entry: ListResponse = {
          path: mailboxPath(attrs[2], delimiter),
          delimiter,
          flags: h.getStringList(attrs[0]),
        };
        // Extended items (RFC 5258 §3.5): `("OLDNAME" ("old"))` after a rename.
        const extended = attrs[3];
        if (Array.isArray(extended)) {
          for (let i = 0; i + 1 < extended.length; i += 2) {
            const value = extended[i + 1];
            if (h.getStringValue(extended[i])?.toUpperCase() === "OLDNAME" && Array.isArray(value))
              entry.oldPath = mailboxPath(value[0], delimiter);
          }
        }
        handler(entry);
      };
    },
    onResponseCode(code, handler) {
      internals.sectionHandlers[code.toUpperCase()] = () => handler();
    },
  };
}
