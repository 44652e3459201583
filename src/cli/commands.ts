/**
 * `deltasync sync <source>` and `deltasync watch <source>`.
 */
import { errorMessage } from "../core/errors.js";
import { registerSecret } from "../orchestrator/redact.js";
import { type RunSyncOptions, runSync, type SyncResult } from "../orchestrator/run-sync.js";
import { watch } from "../orchestrator/watch.js";
import { createFileStateStore } from "../stores/file.js";
import { createMemoryStateStore } from "../stores/memory.js";
import { createSqliteStateStore } from "../stores/sqlite.js";
import type { StateStore } from "../stores/types.js";
import type { Output } from "./output.js";
import { loadCliSource, parseSourceUrl } from "./registry.js";
import { openSink } from "./sinks.js";
import type { OpenedSource } from "./source.js";

export interface SourceFlags {
  state?: string;
  out?: string;
  batchSize?: number;
  password?: string;
  token?: string;
  daysWithin?: number;
  timeMin?: string;
  timeMax?: string;
}

export interface WatchFlags extends SourceFlags {
  poll: number;
  duration?: number;
}

/** The environment adapters read credentials from, with flags copied in; all secrets registered. */
export function credentialEnv(flags: SourceFlags): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  if (flags.password !== undefined) env.DELTASYNC_PASSWORD = flags.password;
  if (flags.token !== undefined) env.DELTASYNC_TOKEN = flags.token;
  for (const [name, value] of Object.entries(env)) {
    if (/PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL|API_?KEY/i.test(name)) registerSecret(value);
  }
  return env;
}

export function openStateStore(file: string | undefined): StateStore {
  if (!file) return createMemoryStateStore();
  if (/\.(sqlite3?|db)$/i.test(file)) return createSqliteStateStore(file);
  return createFileStateStore(file);
}

async function openSource(
  text: string,
  flags: SourceFlags,
  signal: AbortSignal,
): Promise<OpenedSource> {
  const url = parseSourceUrl(text);
  const cli = await loadCliSource(url.protocol.replace(/:$/, ""));
  return cli.open(url, { env: credentialEnv(flags), signal });
}

function summary(r: SyncResult): string {
  const kind = r.reset ? "full sync after reset" : r.fullSync ? "full sync" : "incremental sync";
  return `${r.key}: ${kind}: ${r.updated} updated, ${r.deleted} deleted, ${r.read} read changes in ${r.batches} batches, ${r.pages} pages, ${r.durationMs} ms`;
}

export function resultEvent(
  r: SyncResult,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const { state: _state, ...rest } = r;
  return { event: "sync", ...rest, ...extra };
}

/**
 * Opens the source, the state store and the output sink, hands `run` the options every command
 * passes to the orchestrator, and closes all three afterwards.
 */
async function withSource(
  source: string,
  flags: SourceFlags,
  signal: AbortSignal,
  run: (opened: OpenedSource, options: RunSyncOptions<unknown>) => Promise<void>,
): Promise<void> {
  const opened = await openSource(source, flags, signal);
  const store = openStateStore(flags.state);
  const sink = openSink(flags.out, opened.key);
  try {
    await run(opened, {
      ...sink.callbacks,
      key: opened.key,
      store,
      signal,
      batchSize: flags.batchSize,
      daysWithin: flags.daysWithin,
      timeMin: flags.timeMin,
      timeMax: flags.timeMax,
    });
  } finally {
    sink.close();
    await store.close();
    await opened.close();
  }
}

export function syncCommand(source: string, flags: SourceFlags, out: Output, signal: AbortSignal) {
  return withSource(source, flags, signal, async (opened, options) => {
    if (!flags.state) out.note("note: no --state given; the next run will be a full sync again");
    const progress = out.progress(`sync ${opened.key}`, 0);
    try {
      const result = await runSync(opened.syncable, {
        ...options,
        onProgress: (p) => progress.update(p.updated + p.deleted + p.read, p.batches),
      });
      progress.stop();
      out.emit(resultEvent(result), summary(result));
    } finally {
      progress.stop();
    }
  });
}

export function watchCommand(source: string, flags: WatchFlags, out: Output, signal: AbortSignal) {
  return withSource(
    source,
    flags,
    signal,
    (opened, options) =>
      new Promise<void>((resolve, reject) => {
        const sub = watch(opened.syncable, {
          ...options,
          pollIntervalMs: flags.poll * 1000,
          onError: (e) => out.note(`deltasync: sync failed, backing off: ${errorMessage(e)}`),
        }).subscribe({
          next: (r) =>
            out.emit(resultEvent(r, { trigger: r.trigger }), `[${r.trigger}] ${summary(r)}`),
          error: reject,
          complete: resolve,
        });
        signal.addEventListener("abort", () => {
          sub.unsubscribe();
          resolve();
        });
      }),
  );
}
