import type { OutboxRows } from "../two-way/outbox-rows.js";
import { memoryOutboxRows } from "./memory-outbox.js";
import type { StateStore } from "./types.js";

/**
 * A state store in a `Map`: for tests and short-lived processes.
 * @example
 * const store = createMemoryStateStore();
 * await runSync(folder, { store, onUpdated: (records) => save(records) });
 */
export function createMemoryStateStore(initial?: Record<string, string>): StateStore {
  const states = new Map<string, string>(Object.entries(initial ?? {}));
  let rows: OutboxRows | undefined;
  return {
    async get(key) {
      return states.get(key);
    },
    async compareAndSet(key, expected, next) {
      if (states.get(key) !== expected) return false;
      states.set(key, next);
      return true;
    },
    async delete(key) {
      states.delete(key);
    },
    async keys() {
      return [...states.keys()].sort();
    },
    async close() {},
    outboxRows: () => {
      rows ??= memoryOutboxRows({
        get: (key) => states.get(key),
        delete: (key) => void states.delete(key),
        keys: () => states.keys(),
      });
      return rows;
    },
  };
}
