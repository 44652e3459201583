/**
 * The row outbox (see two-way/outbox-rows.ts) of the memory store: rows as JSON text in maps, so
 * a commit costs the rows it changed (the document form rewrote and re-parsed the pair's whole
 * document per commit), and what is stored never shares objects with a caller's document.
 */
import { parseDoc } from "../two-way/log.js";
import {
  changes,
  docFromRows,
  loaded,
  type MetaRow,
  type OutboxRows,
  type RowSnapshot,
  readCopy,
  saved,
  unsaved,
} from "../two-way/outbox-rows.js";

interface PairRows {
  meta: MetaRow;
  entries: Map<number, string>;
  echoes: Map<string, { ord: number; text: string }>;
}

/** Where an older outbox kept a pair's whole document (the store's own states). */
export interface LegacyDocs {
  get(key: string): string | undefined;
  delete(key: string): void;
  keys(): Iterable<string>;
}

export function memoryOutboxRows(legacy: LegacyDocs): OutboxRows {
  const tables = new Map<string, PairRows>();
  const cache = new Map<string, RowSnapshot>();

  const load = (key: string): RowSnapshot => {
    const t = tables.get(key);
    const cached = cache.get(key);
    if (t && cached && cached.meta.version === t.meta.version) return cached;
    let s: RowSnapshot;
    if (!t) {
      const old = legacy.get(key);
      s = unsaved(old === undefined ? undefined : parseDoc(key, old));
    } else {
      const echoes = [...t.echoes.values()].sort((a, b) => a.ord - b.ord).map((e) => e.text);
      const entries = [...t.entries].sort(([a], [b]) => a - b).map(([, text]) => text);
      s = loaded(t.meta, docFromRows(key, t.meta, entries, echoes));
    }
    cache.set(key, s);
    return s;
  };

  return {
    read: (key) => readCopy(load(key)),
    update(key, fn) {
      const s = load(key);
      try {
        const result = fn(s.doc);
        const ch = changes(s);
        if (!ch) return result;
        const t = tables.get(key) ?? { meta: ch.meta, entries: new Map(), echoes: new Map() };
        for (const seq of ch.dropEntries) t.entries.delete(seq);
        for (const e of ch.putEntries) t.entries.set(e.seq, JSON.stringify(e));
        for (const k of ch.dropEchoes) t.echoes.delete(k);
        for (const { echo, ord } of ch.putEchoes) {
          t.echoes.set(echo.sourcekey, { ord, text: JSON.stringify(echo) });
        }
        t.meta = ch.meta;
        tables.set(key, t);
        if (s.meta.version === 0) legacy.delete(key);
        saved(s, ch);
        return result;
      } catch (error) {
        // `fn` may have changed the cached document before it failed: nothing was stored.
        cache.delete(key);
        throw error;
      }
    },
    keys() {
      const out = new Set(tables.keys());
      for (const k of legacy.keys()) out.add(k);
      return [...out].sort();
    },
  };
}
