/**
 * A tiny deterministic journal-backed scope for orchestrator tests: every mutation gets a
 * sequence number, a sync returns what changed after the cursor, pages are `(after, upto]`
 * ranges with per-change resume points, `compact()` invalidates older states, and `fault` injects
 * failures before a page fetch.
 */
import { Subject } from "rxjs";
import { StateInvalidError } from "../../src/core/errors.js";
import type { Page, PageRequest } from "../../src/core/source.js";
import { createSyncable, type Syncable } from "../../src/core/syncable.js";
import type { Change, Notification } from "../../src/core/types.js";

export interface FakeData {
  title: string;
  v: number;
}

interface Entry {
  seq: number;
  data?: FakeData;
  parentKey: string;
}

interface FakePage {
  after: number;
  upto: number;
}

export interface FakeScope {
  syncable: Syncable<FakeData>;
  put(key: string, title?: string): void;
  remove(key: string): void;
  compact(): void;
  truth(): Map<string, FakeData>;
  /** Runs before every page fetch with the 1-based fetch number; throw to inject a fault. */
  fault?: (fetch: number, request: PageRequest<number, FakePage>) => void | Promise<void>;
  /** Drop push notifications (a lost webhook). */
  dropNotifications: boolean;
  /** True while someone listens to the push channel. */
  listened(): boolean;
  fetches: number;
}

export function createFakeScope(
  options: { pageSize?: number; items?: number; scope?: string } = {},
): FakeScope {
  const pageSize = options.pageSize ?? 10;
  const entries = new Map<string, Entry>();
  const hub = new Subject<Notification<FakeData>>();
  let seq = 0;
  let minValid = 0;
  const scopeName = options.scope ?? "folder:fake";

  const fake: FakeScope = {
    dropNotifications: false,
    fetches: 0,
    listened: () => hub.observed,
    syncable: undefined as unknown as Syncable<FakeData>,
    put(key, title) {
      const prev = entries.get(key);
      const data = { title: title ?? `item ${key}`, v: (prev?.data?.v ?? 0) + 1 };
      entries.set(key, { seq: ++seq, data, parentKey: "fake" });
      if (!fake.dropNotifications) {
        hub.next({
          objectType: "item",
          eventType: prev?.data ? "updated" : "created",
          object: { sourcekey: key, type: "item", data },
          scope: scopeName,
        });
      }
    },
    remove(key) {
      if (!entries.get(key)?.data) return;
      entries.set(key, { seq: ++seq, parentKey: "fake" });
      if (!fake.dropNotifications) {
        hub.next({
          objectType: "item",
          eventType: "deleted",
          object: { sourcekey: key, type: "item" },
          scope: scopeName,
        });
      }
    },
    compact() {
      minValid = seq;
      for (const [k, e] of entries) if (!e.data) entries.delete(k);
    },
    truth() {
      const out = new Map<string, FakeData>();
      for (const [k, e] of entries) if (e.data) out.set(k, e.data);
      return out;
    },
  };

  const fetchPage = async (req: PageRequest<number, FakePage>): Promise<Page<number, FakePage>> => {
    fake.fetches++;
    await fake.fault?.(fake.fetches, req);
    const from = req.cursor ?? 0;
    if (req.cursor !== undefined && req.cursor < minValid) {
      throw new StateInvalidError("cursor older than the journal");
    }
    const range = req.page ?? { after: from, upto: seq };
    const inRange = [...entries.entries()]
      .filter(
        ([, e]) =>
          e.seq > range.after && e.seq <= range.upto && (e.data || req.cursor !== undefined),
      )
      .sort((a, b) => a[1].seq - b[1].seq);
    const slice = inRange.slice(0, pageSize);
    const changes: Change<FakeData>[] = slice.map(([key, e]) => {
      const position = { page: { after: e.seq, upto: range.upto } };
      return e.data
        ? {
            kind: "update",
            object: {
              sourcekey: key,
              type: "item",
              parentKey: e.parentKey,
              changeKey: String(e.seq),
              data: e.data,
            },
            created: req.fullSync,
            position,
          }
        : {
            kind: "delete",
            object: { sourcekey: key, type: "item", parentKey: e.parentKey },
            soft: false,
            position,
          };
    });
    const last = slice[slice.length - 1];
    if (inRange.length > pageSize && last) {
      return { changes, nextPage: { after: last[1].seq, upto: range.upto } };
    }
    return { changes, newCursor: range.upto };
  };

  fake.syncable = createSyncable<FakeData>({
    adapter: "fake",
    scope: scopeName,
    source: { fetchPage: fetchPage as never },
    windowKeys: ["daysWithin"],
    notifications: () => hub.asObservable(),
  });
  for (let i = 0; i < (options.items ?? 0); i++) fake.put(`k${String(i).padStart(6, "0")}`);
  return fake;
}

/** A mirror built only from batch callbacks. */
export function callbackMirror() {
  const mirror = new Map<string, FakeData>();
  const batches: number[] = [];
  return {
    mirror,
    batches,
    callbacks: {
      onUpdated(records: { sourcekey: string; data: FakeData }[]) {
        batches.push(records.length);
        for (const r of records) mirror.set(r.sourcekey, r.data);
      },
      onDeleted(keys: string[]) {
        batches.push(keys.length);
        for (const k of keys) mirror.delete(k);
      },
      onReset() {
        mirror.clear();
      },
    },
  };
}
