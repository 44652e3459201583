/**
 * The one interface every state store implements: read a state, compare-and-set a state.
 * Keys are credential-free ids such as `imap:alice@host/INBOX` or `memory:alice:mail`.
 */

import type { OutboxRows } from "../two-way/outbox-rows.js";

/** Persists sync states by key. Every store implements these members (one is optional). */
export interface StateStore {
  /** The state saved under `key`, or `undefined` when there is none. */
  get(key: string): Promise<string | undefined>;
  /**
   * Saves `next` under `key` only if the stored state still equals `expected` (`undefined`:
   * only if there is none). Resolves `true` when saved, `false` when another writer won.
   */
  compareAndSet(key: string, expected: string | undefined, next: string): Promise<boolean>;
  /** Removes the state under `key` (no error if there is none). */
  delete(key: string): Promise<void>;
  /** Every key with a state, sorted. */
  keys(): Promise<string[]>;
  /** Releases files and connections; safe to call twice. */
  close(): Promise<void>;
  /**
   * Optional: a row-per-entry outbox in the same database (`createOutbox` uses it instead of
   * one document per pair; the SQLite store has it).
   */
  outboxRows?(): OutboxRows;
}
