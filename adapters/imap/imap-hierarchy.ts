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

/** True when `key` lies below `folder` (importers cascade a folder delete to its subtree). */
const below = (key: string, folder: string, delimiter: string) =>
  delimiter !== "" && key.startsWith(`${folder}${delimiter}`);

export function hierarchySource(
  connection: ImapConnection,
): ChangeSource<Snapshot, never> & { identity(): string } {
  return {
    cursorSchema: z.record(z.string(), z.string()),
    identity: () => `imap:${connection.label} hierarchy`,
    async fetchPage(req) {
      const listing = await connection.withClient(async (client) => {
        const entries = await client.list({ statusQuery: { uidValidity: true } });
        return entries.map(toFolder);
      }, req.signal);
      const before = req.cursor ?? {};
      const { changes: diffed, snapshot } = diffSnapshot(before, listing, "folder");
      const delimiter = listing[0] ? (listing[0].data as ImapFolder).delimiter : "";
      // Deletes first: a delete takes the folder's subtree with it in the importer, so every
      // listed folder below a deleted one (a surviving child, or the children of a folder
      // recreated with a new UIDVALIDITY) is reported again after it, as created.
      const deletes: Change[] = [];
      for (const change of diffed) {
        const key = change.object.sourcekey;
        const previous = before[key];
        const recreated =
          change.kind === "update" &&
          previous !== undefined &&
          uidValidityOf(previous) !== uidValidityOf(change.object.changeKey);
        if (change.kind === "delete" || recreated) {
          const { type, parentKey } = change.object;
          const object = { sourcekey: key, type, ...(parentKey ? { parentKey } : {}) };
          deletes.push({ kind: "delete", object, soft: false });
        }
      }
      const gone = deletes.map((d) => d.object.sourcekey);
      const changes: Change[] = [...deletes];
      for (const obj of listing) {
        const key = obj.sourcekey;
        const cascaded = gone.some((g) => g === key || below(key, g, delimiter));
        if (cascaded) changes.push({ kind: "update", object: obj, created: true });
        else if (before[key] !== snapshot[key]) {
          changes.push({ kind: "update", object: obj, created: before[key] === undefined });
        }
      }
      // Each change's resume point is the snapshot as the importer has it right after it, so a
      // round stopped inside this page (maxChanges, a batch) resumes exactly, however the
      // listing changes before the next round.
      return {
        changes: changes.map((change, i) => ({
          ...change,
          position: () => ({ cursor: snapshotAfter(before, changes, i + 1, delimiter) }),
        })),
        newCursor: snapshot,
      };
    },
  };
}

/** `before` with the first `count` changes applied (a delete removes the folder's subtree). */
function snapshotAfter(
  before: Snapshot,
  changes: Change[],
  count: number,
  delimiter: string,
): Snapshot {
  const out = { ...before };
  for (const change of changes.slice(0, count)) {
    const key = change.object.sourcekey;
    if (change.kind === "update") {
      out[key] = change.object.changeKey ?? "";
      continue;
    }
    for (const k of Object.keys(out)) if (k === key || below(k, key, delimiter)) delete out[k];
  }
  return out;
}
