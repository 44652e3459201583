/**
 * `deltasync sync <source>` and `deltasync watch <source>`.
 */
import { ArgumentError, errorMessage, MassChangeError } from "../core/errors.js";
import { registerSecret } from "../orchestrator/redact.js";
import { type RunSyncOptions, runSync, type SyncResult } from "../orchestrator/run-sync.js";
import { watch } from "../orchestrator/watch.js";
import { createFileStateStore } from "../stores/file.js";
import { createMemoryStateStore } from "../stores/memory.js";
import { createSqliteStateStore } from "../stores/sqlite.js";
import type { StateStore } from "../stores/types.js";
import { formatError } from "./errors.js";
import type { Output } from "./output.js";
import { loadCliSource, parseSourceUrl } from "./registry.js";
import { type ChangeSink, openSink } from "./sinks.js";
import type { CliSource, OpenedSource } from "./source.js";

export interface SourceFlags {
  state?: string;
  out?: string;
  batchSize?: number;
  password?: string;
  token?: string;
  daysWithin?: number;
  timeMin?: string;
  timeMax?: string;
  /** `sync`: apply a mass delete the mirror's guard paused (one run). */
  confirmMassChange?: boolean;
}

export interface WatchFlags extends SourceFlags {
  poll: number;
  duration?: number;
}

/** Environment variable names that hold secrets (redacted, and never inherited by worker jobs). */
export const SECRET_NAME = /PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL|API_?KEY/i;

/**
 * `env` with `password` / `token` copied to the variables the adapter names in
 * `credentialFlags`; a credential the source does not take is a bad-argument error.
 */
export function withCredentialFlags(
  env: Record<string, string | undefined>,
  credentials: { password?: string | undefined; token?: string | undefined },
  source: Pick<CliSource, "credentialFlags" | "schemes">,
): Record<string, string | undefined> {
  const out = { ...env };
  for (const flag of ["password", "token"] as const) {
    const value = credentials[flag];
    if (value === undefined) continue;
    const name = source.credentialFlags?.[flag];
    if (!name) {
      throw new ArgumentError(
        `the ${source.schemes[0]}: source takes no --${flag}${source.credentialFlags?.password || source.credentialFlags?.token ? ` (use --${flag === "password" ? "token" : "password"})` : ""}`,
      );
    }
    out[name] = value;
  }
  return out;
}

/** The values of the secret-looking variables of `env`. */
export function secretsOf(env: Record<string, string | undefined>): string[] {
  return Object.entries(env)
    .filter(([name, value]) => value !== undefined && SECRET_NAME.test(name))
    .map(([, value]) => value as string);
}

/**
 * The environment an adapter reads credentials from: the process's, plus `--password` /
 * `--token` copied to the variables the adapter names in `credentialFlags`. Every secret is
 * registered for redaction.
 */
export function credentialEnv(
  flags: SourceFlags,
  source: Pick<CliSource, "credentialFlags" | "schemes">,
): Record<string, string | undefined> {
  registerSecret(flags.password);
  registerSecret(flags.token);
  const env = withCredentialFlags({ ...process.env }, flags, source);
  for (const secret of secretsOf(env)) registerSecret(secret);
  return env;
}

/** Opens the `--state` store; a path that cannot be written fails here, before any sync. */
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
  return cli.open(url, { env: credentialEnv(flags, cli), signal });
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
  // The state and mirror paths are checked before connecting: a bad path fails at once.
  const store = openStateStore(flags.state);
  let opened: OpenedSource | undefined;
  let sink: ChangeSink;
  try {
    opened = await openSource(source, flags, signal);
    sink = openSink(flags.out, opened.key);
  } catch (error) {
    await store.close();
    await opened?.close();
    throw error;
  }
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
      confirmMassChange: flags.confirmMassChange,
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
          onError: (e) =>
            out.note(
              e instanceof MassChangeError
                ? `${formatError(e, false)} (with the same source, --state and --out), then watch again`
                : `deltasync: sync failed, backing off: ${errorMessage(e)}`,
            ),
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
