/**
 * A change journal: the latest change number of every key, in change-number order.
 * Superseded entries are tombstoned in place and swept once they are half the log, so
 * recording is O(1) amortised and a page read is a binary search plus a scan.
 */
export interface JournalEntry {
  cn: number;
  key: string;
  /** The record the key names, so exporting needs no lookup. */
  ref: unknown;
  dead: boolean;
}

export class Journal {
  #log: JournalEntry[] = [];
  #latest = new Map<string, JournalEntry>();
  #dead = 0;

  /** Records that `key` changed at change number `cn` (which must grow). */
  record(key: string, cn: number, ref: unknown): void {
    const old = this.#latest.get(key);
    if (old) this.#kill(old);
    const entry = { cn, key, ref, dead: false };
    this.#log.push(entry);
    this.#latest.set(key, entry);
  }

  /** Forgets `key` entirely (compaction of a tombstone). */
  forget(key: string): void {
    const old = this.#latest.get(key);
    if (!old) return;
    this.#kill(old);
    this.#latest.delete(key);
  }

  /** The change number `key` last changed at. */
  latest(key: string): number | undefined {
    return this.#latest.get(key)?.cn;
  }

  keys(): IterableIterator<string> {
    return this.#latest.keys();
  }

  /** Live entries with a change number above `cn`, oldest first. */
  *after(cn: number): Generator<JournalEntry> {
    const log = this.#log;
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((log[mid] as JournalEntry).cn <= cn) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < log.length; i++) {
      const entry = log[i] as JournalEntry;
      if (!entry.dead) yield entry;
    }
  }

  /** Every live entry as `[cn, key]`, for snapshots. */
  entries(): [number, string][] {
    return this.#log.filter((e) => !e.dead).map((e) => [e.cn, e.key]);
  }

  #kill(entry: JournalEntry): void {
    entry.dead = true;
    if (++this.#dead > 1024 && this.#dead * 2 > this.#log.length) {
      this.#log = this.#log.filter((e) => !e.dead);
      this.#dead = 0;
    }
  }
}
