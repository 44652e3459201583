export {
  type AccountRecord,
  type AccountRegistry,
  type AccountRegistryOptions,
  createAccountRegistry,
  type SyncKeyStatus,
  syncKeyOf,
} from "./accounts.js";
export {
  createSyncQueue,
  enqueueSync,
  type SyncQueue,
  type SyncQueueOptions,
} from "./queue.js";
export type { WatchAccount, WatchContext } from "./watchers.js";
export { createWorker, type SyncJob, type Worker, type WorkerOptions } from "./worker.js";
