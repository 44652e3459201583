/**
 * `deltasync demo`: a generated mailbox, calendar and address book on an in-process memory
 * server, full-synced into a local SQLite mirror, then watched while a change generator mutates
 * the server, in two-way mode for the items: a local edit, a remote edit and a conflict paused
 * and resolved are shown before the generator starts. Everything lives in `--dir`: the server's snapshot (`server.json`, so the next run
 * starts from the same server with its change journal), and `demo.sqlite` (states + mirror), so
 * a second run is incremental.
 */

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subscription } from "rxjs";
import { loadSnapshot, saveSnapshot } from "../../adapters/memory/cli.js";
import { createMemoryServer, type MemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import type { Syncable } from "../core/syncable.js";
import type { SyncObject } from "../core/types.js";
import type { BatchCallbacks } from "../orchestrator/batch.js";
import { runSync } from "../orchestrator/run-sync.js";
import { createSqliteMirror, type SqliteMirror } from "../orchestrator/sqlite-mirror.js";
import { type WatchResult, type WatchTwoWay, watch } from "../orchestrator/watch.js";
import { createSqliteStateStore } from "../stores/sqlite.js";
import { openSqlite } from "../stores/sqlite-driver.js";
import { resultEvent } from "./commands.js";
import { DEMO_LAYOUT, generateDemoServer, mutateDemoServer, seededRandom } from "./demo-data.js";
import { type DemoTwoWay, RoundWaiter, settleTwoWay, showTwoWay } from "./demo-two-way.js";
import type { Output } from "./output.js";

export interface DemoFlags {
  dir: string;
  items: number;
  rate: number;
  poll: number;
  batchSize: number;
}

interface DemoScope {
  key: string;
  syncable: Syncable;
  mirror: SqliteMirror;
}

function describe(obj: SyncObject, folders: Map<string, string>): string {
  const d = obj.data as { fields?: Record<string, unknown>; name?: string; read?: boolean } | null;
  const f = d?.fields ?? {};
  const title = String(f.subject ?? f.summary ?? f.name ?? d?.name ?? "");
  const where = obj.parentKey ? (folders.get(obj.parentKey) ?? obj.parentKey) : "";
  return `${where ? `[${where}] ` : ""}${title}`;
}

const label = (text: string) => text.padEnd(10);

function titleOf(mirror: SqliteMirror, sourcekey: string, folders: Map<string, string>): string {
  const row = mirror.get(sourcekey);
  if (!row) return sourcekey;
  const obj = {
    sourcekey,
    type: "item" as const,
    parentKey: row.parentKey ?? undefined,
    data: row.data,
  };
  return describe(obj, folders);
}

/** Mirror callbacks that also print every change the mirror applied. */
function printing(
  scope: DemoScope,
  out: Output,
  folders: Map<string, string>,
  live: () => boolean,
): BatchCallbacks {
  const m = scope.mirror.callbacks;
  return {
    onUpdated(records) {
      if (!live()) {
        m.onUpdated(records);
        return;
      }
      const before = records.map((r) => scope.mirror.get(r.sourcekey));
      m.onUpdated(records);
      for (const [i, r] of records.entries()) {
        if (r.type === "folder")
          folders.set(r.sourcekey, String((r.data as { name?: unknown }).name));
        const old = before[i];
        const op = !old ? "create" : old.parentKey !== (r.parentKey ?? null) ? "move" : "update";
        const mark = label({ create: "+ created", move: "> moved", update: "~ updated" }[op]);
        out.emit(
          {
            event: "change",
            op,
            scope: scope.key,
            sourcekey: r.sourcekey,
            summary: describe(r, folders),
          },
          `  ${mark} ${describe(r, folders)}`,
        );
      }
    },
    onDeleted(keys, objects) {
      const titles = live() ? objects.map((o) => titleOf(scope.mirror, o.sourcekey, folders)) : [];
      m.onDeleted(keys, objects);
      if (!live()) return;
      for (const [i, o] of objects.entries()) {
        out.emit(
          { event: "change", op: "delete", scope: scope.key, sourcekey: o.sourcekey, soft: o.soft },
          `  ${label("- deleted")} ${titles[i]}${o.soft ? " (soft)" : ""}`,
        );
      }
    },
    onRead(changes) {
      m.onRead(changes);
      if (!live()) return;
      for (const c of changes) {
        const title = titleOf(scope.mirror, c.sourcekey, folders);
        out.emit(
          {
            event: "change",
            op: c.isRead ? "read" : "unread",
            scope: scope.key,
            sourcekey: c.sourcekey,
          },
          `  ${label(c.isRead ? "✓ read" : "● unread")} ${title}`,
        );
      }
    },
    onReset: m.onReset,
  };
}

export async function demoCommand(
  flags: DemoFlags,
  out: Output,
  signal: AbortSignal,
): Promise<void> {
  const dir = resolve(flags.dir);
  mkdirSync(dir, { recursive: true });
  const snapshotFile = join(dir, "server.json");
  const snapshot = loadSnapshot(snapshotFile);
  const server: MemoryServer = createMemoryServer({ from: snapshot });
  const firstRun = !snapshot;
  if (firstRun) {
    out.note(`generating a mailbox, calendar and address book with ${flags.items} items…`);
    generateDemoServer(server, flags.items);
    saveSnapshot(server, snapshotFile);
  }
  const db = openSqlite(join(dir, "demo.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  const states = createSqliteStateStore(db);
  const store = server.store(DEMO_LAYOUT.store);
  // Two-way for the items: new messages go to the Inbox, with the target's client-chosen keys.
  const inboxKey = store.folders().find((f) => f.name === DEMO_LAYOUT.mailFolders[0])?.sourcekey;
  const target = inboxKey ? memoryWriteTarget(server, inboxKey) : undefined;
  const scopes: DemoScope[] = [
    { key: "memory:demo/alice/hierarchy", syncable: store.subtree.hierarchy },
    { key: "memory:demo/alice/items", syncable: store.items },
  ].map((s) => ({
    ...s,
    mirror: createSqliteMirror(db, { source: s.key, keyFor: target?.keyFor }),
  }));
  const folders = new Map(store.folders().map((f) => [f.sourcekey, f.name]));
  const itemScope = scopes[1] as DemoScope;
  let lastRound: WatchResult | undefined;
  const waiter = new RoundWaiter();
  const save = () => saveSnapshot(server, snapshotFile);
  const two: DemoTwoWay | undefined =
    target && inboxKey
      ? {
          server,
          mirror: itemScope.mirror,
          target,
          pair: itemScope.key,
          folderKey: inboxKey,
          save,
          waiter,
          last: () => lastRound,
        }
      : undefined;
  const twoWay = (s: DemoScope): WatchTwoWay | undefined =>
    two && s === itemScope
      ? {
          target: two.target,
          outbox: s.mirror.outbox,
          pair: s.key,
          policy: "ask",
          onRemote: s.mirror.pushCallbacks.onRemote,
          // The server changed: persist it before a pull's state can cover the change.
          onPushed: (entry, result, info) => {
            save();
            return s.mirror.pushCallbacks.onPushed(entry, result, info);
          },
        }
      : undefined;
  const total = () => server.allItems().filter((i) => i.store === DEMO_LAYOUT.store).length;
  out.emit(
    { event: "demo", phase: "start", dir, firstRun, serverItems: total(), folders: folders.size },
    `deltasync demo: ${total()} items in ${folders.size} folders (${dir}${firstRun ? ", new" : ""})`,
  );

  let live = false;
  const callbacks = new Map(scopes.map((s) => [s.key, printing(s, out, folders, () => live)]));
  const syncAll = async (label: string) => {
    for (const s of scopes) {
      const saved = await states.get(s.key);
      // A bar for the long part only: the items of the first round (a full sync has a known total).
      const progress =
        label === "initial" && s.key.endsWith("items")
          ? out.progress(`${label} sync`, saved ? 0 : total())
          : { update() {}, stop() {} };
      const r = await runSync(s.syncable, {
        ...callbacks.get(s.key),
        key: s.key,
        store: states,
        batchSize: flags.batchSize,
        onProgress: (p) => progress.update(p.updated + p.deleted + p.read, p.batches),
      });
      progress.stop();
      out.emit(
        resultEvent(r, { phase: label }),
        `${label}: ${s.key}: ${r.fullSync ? "full" : "incremental"}${r.reset ? " (after reset)" : ""}, ${r.updated} updated, ${r.deleted} deleted, ${r.read} read flags, ${r.batches} batches, ${r.durationMs} ms`,
      );
    }
  };

  const subs: Subscription[] = [];
  let tick: ReturnType<typeof setInterval> | undefined;
  try {
    await syncAll("initial");
    if (!signal.aborted) {
      out.note(
        "watching for changes (push + safety poll); a generator mutates the server; Ctrl-C to stop",
      );
      live = true;
      for (const s of scopes) {
        subs.push(
          watch(s.syncable, {
            ...callbacks.get(s.key),
            key: s.key,
            store: states,
            batchSize: flags.batchSize,
            initialSync: false,
            pollIntervalMs: flags.poll * 1000,
            debounceMs: 50,
            onError: (e) =>
              out.note(`sync failed, backing off: ${e instanceof Error ? e.message : String(e)}`),
            twoWay: twoWay(s),
          }).subscribe({
            next: (r) => {
              if (s === itemScope) {
                lastRound = r;
                waiter.round(r);
              }
              const n = r.updated + r.deleted + r.read;
              const pushed = r.push?.pushed ?? 0;
              if (n + pushed > 0 && !out.json) {
                const sent =
                  pushed > 0 ? `, ${pushed} local edit${pushed === 1 ? "" : "s"} pushed` : "";
                out.note(
                  `  (${r.trigger}: ${n} change${n === 1 ? "" : "s"}${sent}, ${r.durationMs} ms)`,
                );
              }
            },
            error: (e) => out.note(`watch stopped: ${e instanceof Error ? e.message : String(e)}`),
          }),
        );
      }
      if (two) {
        out.note("two-way: the app edits its mirror while the server changes too");
        await showTwoWay(two, out, signal);
      }
      const rnd = seededRandom(Date.now() & 0xffffff);
      let due = 0;
      await new Promise<void>((done) => {
        // Mutate, then persist the server before any sync can see the change: the saved server
        // is never behind the saved states, so the next run stays incremental.
        tick = setInterval(() => {
          due += flags.rate / 4;
          const n = Math.floor(due);
          due -= n;
          if (n > 0) {
            mutateDemoServer(server, rnd, n);
            saveSnapshot(server, snapshotFile);
          }
        }, 250);
        if (signal.aborted) done();
        signal.addEventListener("abort", () => done(), { once: true });
      });
    }
  } finally {
    clearInterval(tick);
    for (const s of subs) s.unsubscribe();
  }
  // Catch up with the last mutations, so the mirror equals the server when we exit.
  if (two) await settleTwoWay(two);
  await syncAll("final");
  live = false;
  saveSnapshot(server, snapshotFile);
  const items = scopes.find((s) => s.key.endsWith("items"))?.mirror.count() ?? 0;
  const consistent = items === total();
  out.emit(
    { event: "demo", phase: "end", mirroredItems: items, serverItems: total(), consistent },
    `done: mirror holds ${items} items, server ${total()}${consistent ? " (in sync)" : " (MISMATCH)"}; run again for an incremental sync`,
  );
  db.close();
}
