export { syncCalendar, syncContacts, syncEmail } from "./account.js";
export type { BatchCallbacks, DeletedRecord, ReadChange } from "./batch.js";
export { type Concurrency, KeyedRunner } from "./keyed.js";
export type { MirrorRow } from "./mirror-rows.js";
export {
  createPostgresMirror,
  type PostgresMirror,
  type PostgresMirrorEdits,
  type PostgresMirrorOptions,
  type PostgresMirrorSyncOptions,
} from "./postgres-mirror.js";
export { describeError, redact, registerSecret } from "./redact.js";
export { type RunSyncOptions, runSync, type SyncProgress, type SyncResult } from "./run-sync.js";
export {
  createSqliteMirror,
  type SqliteMirror,
  type SqliteMirrorOptions,
} from "./sqlite-mirror.js";
export {
  type BatchEvent,
  channels,
  type EndEvent,
  type ErrorEvent,
  type PageEvent,
  type ResetEvent,
  type RetryEvent,
  type StartEvent,
  type TelemetryBase,
} from "./telemetry.js";
export {
  type WatchOptions,
  type WatchResult,
  type WatchTrigger,
  type WatchTwoWay,
  watch,
} from "./watch.js";
