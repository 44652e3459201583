/**
 * The mailbox hierarchy (`store.subtree.syncHierarchy`): LIST with special-use flags and each
 * mailbox's UIDVALIDITY, diffed against the snapshot kept in the state. A mailbox whose
 * UIDVALIDITY changed (deleted and recreated under the same name) is reported as a delete
 * followed by a create, since every UID in it is new.
 */
import type { ImapFlow, ListResponse } from "imapflow";
import { z } from "zod";
import { diffSnapshot, type Snapshot } from "../../src/core/snapshot.js";
import type { ChangeSource } from "../../src/core/source.js";
import type { Change, SyncObject } from "../../src/core/types.js";
import type { ImapConnection } from "./imap-connection.js";

/** One mailbox as the hierarchy scope exports it. */
export interface ImapFolder {
  path: string;
  name: string;
  delimiter: string;
  /** A special-use attribute the server reported (RFC 6154), e.g. `\Sent`. */
  specialUse?: string;
  uidValidity?: string;
  /** False for `\Noselect` containers. */
  selectable: boolean;
}

function selectable(entry: ListResponse): boolean {
  const flags = [...entry.flags].map((f) => f.toLowerCase());
  return !flags.includes("\\noselect") && !flags.includes("\\nonexistent");
}

/** Every selectable mailbox path (the children of the server-wide composite). */
export async function listSelectable(client: ImapFlow): Promise<string[]> {
  const entries = await client.list({ listOnly: true });
  return entries.filter(selectable).map((e) => e.path);
}

function toFolder(entry: ListResponse): SyncObject<ImapFolder> {
  const uidValidity = entry.status?.uidValidity;
  const specialUse = entry.specialUseSource === "extension" ? entry.specialUse : undefined;
  const data: ImapFolder = {
    path: entry.path,
    name: entry.name,
    delimiter: entry.delimiter,
    ...(specialUse ? { specialUse } : {}),
    ...(uidValidity !== undefined ? { uidValidity: String(uidValidity) } : {}),
    selectable: selectable(entry),
  };
  return {
    sourcekey: entry.path,
    type: "folder",
    ...(entry.parentPath ? { parentKey: entry.parentPath } : {}),
    changeKey: `${data.uidValidity ?? ""}|${specialUse ?? ""}|${data.selectable ? "" : "noselect"}`,
    data,
  };
}

const uidValidityOf = (changeKey: string | undefined) => changeKey?.split("|")[0] ?? "";

export function hierarchySource(connection: ImapConnection): ChangeSource<Snapshot, never> {
  return {
    cursorSchema: z.record(z.string(), z.string()),
    async fetchPage(req) {
      const listing = await connection.withClient(async (client) => {
        const entries = await client.list({ statusQuery: { uidValidity: true } });
        return entries.map(toFolder);
      }, req.signal);
      const before = req.cursor ?? {};
      const { changes: diffed, snapshot } = diffSnapshot(before, listing, "folder");
      const changes: Change[] = [];
      const reported = new Set<string>();
      for (const change of diffed) {
        const key = change.object.sourcekey;
        const previous = before[key];
        const recreated =
          change.kind === "update" &&
          !change.created &&
          previous !== undefined &&
          uidValidityOf(previous) !== uidValidityOf(change.object.changeKey);
        if (!recreated || change.kind !== "update") {
          if (!reported.has(key)) changes.push(change);
          reported.add(key);
          continue;
        }
        const { type, parentKey } = change.object;
        const object = { sourcekey: key, type, ...(parentKey ? { parentKey } : {}) };
        changes.push({ kind: "delete", object, soft: false }, { ...change, created: true });
        reported.add(key);
        // A folder delete takes its subtree with it in the importer: create the children again.
        const prefix = `${key}${(change.object.data as ImapFolder).delimiter}`;
        for (const child of listing) {
          if (!child.sourcekey.startsWith(prefix) || reported.has(child.sourcekey)) continue;
          changes.push({ kind: "update", object: child, created: true });
          reported.add(child.sourcekey);
        }
      }
      return { changes, newCursor: snapshot };
    },
  };
}
