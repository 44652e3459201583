export { createFileStateStore, type FileStateStoreOptions } from "./file.js";
export { createMemoryStateStore } from "./memory.js";
export {
  createPostgresStateStore,
  type PgClient,
  type PgPool,
  type PgQueryable,
  type PostgresStateStoreOptions,
} from "./postgres.js";
export { createSqliteStateStore, type SqliteStateStoreOptions } from "./sqlite.js";
export type { StateStore } from "./types.js";
