/**
 * The write surface of one CalDAV/CardDAV collection for two-way sync (DAVx5's model): creates
 * are a PUT to a client-chosen href with `If-None-Match: *`, updates and deletes carry
 * `If-Match: <etag>`; a 412 is a `ConflictError`. A create replayed after a crash meets its own
 * member (412), which `applied` recognises by its content.
 */
import { ArgumentError } from "../../src/core/errors.js";
import type { SyncObject } from "../../src/core/types.js";
import type { WriteResult, WriteTarget } from "../../src/two-way/types.js";
import { toItem } from "./dav-fetch.js";
import type { DavAccount } from "./index.js";

export interface DavWriteTargetOptions {
  /** File extension of new members. Default `.ics` (`.vcf` for an address book). */
  extension?: string;
}

/**
 * The members of one collection (`/alice/work/`) as a `WriteTarget`. Entry data has the shape
 * the pull delivers (`DavItem`); only its `raw` iCalendar / vCard text is written.
 * @example
 * const target = davWriteTarget(account, "/alice/work/");
 * await push(target, outbox, { pair: "dav:alice/work" });
 */
export function davWriteTarget(
  account: DavAccount,
  collection: string,
  options: DavWriteTargetOptions = {},
): WriteTarget {
  if (!collection.startsWith("/") || !collection.endsWith("/")) {
    throw new ArgumentError(`dav: collection must be an href like /alice/work/, got ${collection}`);
  }
  const extension = options.extension ?? ".ics";
  const fetch = async (href: string, signal?: AbortSignal): Promise<SyncObject | undefined> => {
    const got = await account.get(href, signal);
    if (!got) return undefined;
    return toItem(got.href, collection, got.etag, got.raw, {
      inline: true,
      batch: 1,
      parse: true,
    });
  };
  /** The result of a PUT; a server that sent no etag is asked for the member's version. */
  const result = async (
    href: string,
    etag: string | undefined,
    signal: AbortSignal,
  ): Promise<WriteResult> => {
    if (etag !== undefined) return { sourcekey: href, changeKey: etag };
    const now = await fetch(href, signal);
    return { sourcekey: href, changeKey: now?.changeKey, object: now };
  };
  return {
    id: `dav:${collection}`,
    // RFC 4918 §8.6: the etag changes with the resource's body, and a member has no folder or
    // flags of its own; GET and REPORT bodies of one version may differ (Cyrus, Radicale).
    changeKeyCoversAll: true,
    // RFC 4791 §5.3.2: the client names the resource; the app's local id makes it stable.
    keyFor: (localId) => `${collection}${encodeURIComponent(localId)}${extension}`,
    async create(e, { signal }) {
      const put = await account.put({ href: e.sourcekey, raw: rawOf(e.data) }, { signal });
      return result(put.href, put.etag, signal);
    },
    async update(e, { signal }) {
      const condition =
        e.changeKey !== undefined ? { ifMatch: e.changeKey } : { overwrite: true as const };
      const put = await account.put(
        { href: e.sourcekey, raw: rawOf(e.data) },
        { ...condition, signal },
      );
      return result(put.href, put.etag, signal);
    },
    async delete(e, { signal }) {
      await account.remove(e.sourcekey, { ifMatch: e.changeKey, signal });
    },
    fetch: (href, { signal }) => fetch(href, signal),
    applied(e, remote) {
      if (e.kind !== "create" && e.kind !== "update") return false;
      return sameText(rawOf(e.data), (remote.data as { raw: string }).raw);
    },
    modifiedAt(remote) {
      const raw = (remote.data as { raw: string }).raw;
      const m = /^(?:LAST-MODIFIED|REV)[^:\r\n]*:(\d{8}T\d{6}Z?)/im.exec(unfold(raw));
      if (!m) return undefined;
      const t = (m[1] as string).replace(
        /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z?$/,
        "$1-$2-$3T$4:$5:$6Z",
      );
      const ms = Date.parse(t);
      return Number.isNaN(ms) ? undefined : ms;
    },
  };
}

function rawOf(data: unknown): string {
  const raw = (data as { raw?: unknown } | null)?.raw;
  if (typeof raw !== "string" || raw === "") {
    throw new ArgumentError("dav: entry data must carry the member's raw text ({ raw })");
  }
  return raw;
}

/** RFC 5545 §3.1: a CRLF followed by a space or tab continues the line. */
const unfold = (text: string): string => text.replace(/\r?\n[ \t]/g, "");

/**
 * Whether two iCalendar/vCard texts say the same: servers refold lines and reorder properties
 * (Radicale does both), so lines are compared unfolded and as a sorted list.
 */
export function sameText(a: string, b: string): boolean {
  const norm = (t: string) =>
    unfold(t)
      .split(/\r?\n/)
      .filter((l) => l !== "")
      .sort()
      .join("\n");
  return norm(a) === norm(b);
}
