/**
 * What a local edit of a mirror row means for the outbox, for every mirror (SQLite,
 * PostgreSQL): the `LocalChange` each edit records, on the version the row holds, and how a
 * read-flag edit changes the row's data. The mirrors differ only in how they store rows.
 */
import type { LocalChange } from "../two-way/types.js";

/** The columns of a mirror row an edit's outbox entry is made of. */
export interface EditedRow {
  id: string;
  sourcekey: string;
  /** The version the row holds (null: none known); the push's condition. */
  change_key: string | null;
}

const on = (r: EditedRow) => ({
  localId: r.id,
  sourcekey: r.sourcekey,
  ...(r.change_key === null ? {} : { changeKey: r.change_key }),
});

/** The outbox entries of the mirrors' edits. */
export const localChange = {
  create: (id: string, sourcekey: string, parentKey: string | undefined, data: unknown) =>
    ({
      kind: "create",
      localId: id,
      sourcekey,
      ...(parentKey !== undefined ? { parentKey } : {}),
      data,
    }) satisfies LocalChange,
  update: (r: EditedRow, data: unknown) =>
    ({ kind: "update", ...on(r), data }) satisfies LocalChange,
  delete: (r: EditedRow) => ({ kind: "delete", ...on(r) }) satisfies LocalChange,
  read: (r: EditedRow, isRead: boolean) =>
    ({ kind: "read", ...on(r), isRead }) satisfies LocalChange,
  move: (r: EditedRow, parentKey: string) =>
    ({ kind: "move", ...on(r), parentKey }) satisfies LocalChange,
};

/**
 * The row's data after a read-flag edit: a `read` boolean inside it follows the flag, as the
 * pull side keeps it; other data is returned as is (the same value).
 */
export function withReadFlag(data: unknown, isRead: boolean): unknown {
  const carries =
    data !== null &&
    typeof data === "object" &&
    typeof (data as { read?: unknown }).read === "boolean";
  return carries ? { ...(data as object), read: isRead } : data;
}
