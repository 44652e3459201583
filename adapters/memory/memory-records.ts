/** The plain-data records the memory server keeps (and snapshots as JSON). */

export type FolderKind = "mail" | "calendar" | "contacts";

export type Fields = Readonly<Record<string, unknown>>;

interface Deletion {
  cn: number;
  soft: boolean;
}

export interface ItemRecord {
  key: string;
  store: string;
  parent: string;
  fields: Fields;
  read: boolean;
  createdCn: number;
  /** Last change of anything but the read flag. */
  contentCn: number;
  /** Every move, oldest first; `from` is the folder it left. */
  moves: { cn: number; from: string; to: string }[];
  deleted?: Deletion;
}

export interface FolderRecord {
  key: string;
  store: string;
  /** The parent folder; the store's root folder has none. */
  parent?: string;
  name: string;
  kind: FolderKind;
  createdCn: number;
  contentCn: number;
  /** The last move's change number (a hierarchy scope's old contents depend on it). */
  movedCn?: number;
  deleted?: Deletion;
}

export interface UserRecord {
  key: string;
  fields: Fields;
  createdCn: number;
  contentCn: number;
  deleted?: Deletion;
}

/** Data of an exported item. */
export interface MemoryItemData {
  fields: Fields;
  read: boolean;
}

/** Data of an exported folder. */
export interface MemoryFolderData {
  name: string;
  kind: FolderKind;
}

/** Data of an exported address-book user. */
export interface MemoryUserData {
  fields: Fields;
}

export type MemoryData = MemoryItemData | MemoryFolderData | MemoryUserData;

/** The whole server as JSON, for persisting and restoring it. */
export interface MemorySnapshot {
  version: 1;
  /** The server's identity: states name it, and a restored server keeps it. */
  epoch?: string;
  cn: number;
  floor: number;
  seq: number;
  stores: { name: string; root: string }[];
  folders: FolderRecord[];
  items: ItemRecord[];
  users: UserRecord[];
  journals: Record<string, [number, string][]>;
}
