/**
 * A versioned collection with a change journal: the storage under every emulated Google list.
 * Pages are read "as of" the sequence number at which a round started, so re-reading a page
 * token gives the same items (Google's tokens behave the same way for a client that repeats them).
 */

interface Version<V> {
  seq: number;
  value: V;
}

export interface JournalPage<V> {
  items: V[];
  /** The last journal seq considered; the next page starts after it. */
  last: number;
  /** More entries remain in (last, upto]. */
  more: boolean;
}

export class Journal<V> {
  readonly #entries: { seq: number; key: string }[] = [];
  readonly #versions = new Map<string, Version<V>[]>();

  put(key: string, value: V, seq: number): void {
    this.#entries.push({ seq, key });
    let list = this.#versions.get(key);
    if (!list) this.#versions.set(key, (list = []));
    list.push({ seq, value });
  }

  /** The current value of `key`. */
  get(key: string): V | undefined {
    return this.#versions.get(key)?.at(-1)?.value;
  }

  /** The value of `key` as of `seq`. */
  asOf(key: string, seq: number): V | undefined {
    const list = this.#versions.get(key);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i] as Version<V>;
      if (v.seq <= seq) return v.value;
    }
    return undefined;
  }

  keys(): IterableIterator<string> {
    return this.#versions.keys();
  }

  /**
   * Keys whose latest version as of `upto` was written in (after, upto], in journal order, each
   * mapped by `include` (which may drop it or expand it), until `limit` items were collected.
   */
  page<O>(
    after: number,
    upto: number,
    limit: number,
    include: (value: V, key: string) => O[] | undefined,
  ): JournalPage<O> {
    const entries = this.#entries;
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((entries[mid] as { seq: number }).seq <= after) lo = mid + 1;
      else hi = mid;
    }
    const items: O[] = [];
    let last = after;
    let i = lo;
    for (; i < entries.length && items.length < limit; i++) {
      const entry = entries[i] as { seq: number; key: string };
      if (entry.seq > upto) break;
      last = entry.seq;
      const list = this.#versions.get(entry.key) as Version<V>[];
      let latest: Version<V> | undefined;
      for (let j = list.length - 1; j >= 0; j--) {
        const v = list[j] as Version<V>;
        if (v.seq <= upto) {
          latest = v;
          break;
        }
      }
      if (latest?.seq !== entry.seq) continue;
      const out = include(latest.value, entry.key);
      if (out) for (const o of out) items.push(o);
    }
    const more = i < entries.length && (entries[i] as { seq: number }).seq <= upto;
    return { items, last, more };
  }
}

/** Opaque-looking tokens: base64url JSON with a tag. */
export function encodeToken(tag: string, payload: object): string {
  return Buffer.from(JSON.stringify({ t: tag, ...payload })).toString("base64url");
}

export function decodeToken<T>(tag: string, token: string): T | undefined {
  try {
    const json = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { t?: string };
    return json.t === tag ? (json as T) : undefined;
  } catch {
    return undefined;
  }
}
