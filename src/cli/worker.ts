/**
 * `deltasync worker`: one process of a worker fleet. Takes the sync jobs of the accounts
 * registry's keys from the queue in PostgreSQL (`--db` / `DATABASE_URL`), opens each key's
 * source from its account row and the operator's credentials, and syncs it into the PostgreSQL
 * mirror (rows and state in one transaction per batch). Logs one JSON object per line on stderr.
 * SIGTERM / Ctrl-C: the running batches are saved, the keys handed back, then exit 0.
 */
import type { Command } from "commander";
import type { Unsubscribable } from "rxjs";
import { ArgumentError, AuthError, NotSupportedError } from "../core/errors.js";
import { createPostgresMirror } from "../orchestrator/postgres-mirror.js";
import { describeError, redact } from "../orchestrator/redact.js";
import { runSync } from "../orchestrator/run-sync.js";
import type { AccountRecord } from "../scale/accounts.js";
import type { WatchContext } from "../scale/watchers.js";
import { createWorker, type SyncJob } from "../scale/worker.js";
import { openPgPool, type PgPool } from "../stores/postgres.js";
import { accountSource } from "./account-source.js";
import { dbUrl } from "./accounts.js";
import {
  type Credentials,
  credentialsOf,
  jobEnvironment,
  loadCredentialsModule,
} from "./credentials.js";
import { EXIT } from "./errors.js";
import { positiveInt, positiveNumber } from "./parse.js";
import type { OpenedSource } from "./source.js";

export interface WorkerFlags {
  db?: string;
  concurrency: number;
  perAccount: number;
  poll: number;
  tick: number;
  expire: number;
  batchSize: number;
  maxWatches: number;
  table: string;
  credentials?: string;
}

/** One JSON line on stderr, redacted (with the job's own secrets when given). */
export function log(event: string, fields: Record<string, unknown>, secrets: string[] = []): void {
  const line = JSON.stringify({ time: new Date().toISOString(), event, ...fields });
  process.stderr.write(`${redact(line, secrets)}\n`);
}

/** Failures only the operator can fix (re-adding the account unparks the key). */
export function isPermanent(error: unknown): boolean {
  return (
    error instanceof AuthError ||
    error instanceof ArgumentError ||
    error instanceof NotSupportedError
  );
}

/** Takes the job's secrets out of an error before it is logged or stored as the key's last error. */
function scrub(error: unknown, secrets: string[]): void {
  if (!(error instanceof Error) || secrets.length === 0) return;
  error.message = redact(error.message, secrets);
  if (error.stack) error.stack = redact(error.stack, secrets);
}

/** Opens the job's source and syncs it into the key's mirror. */
async function syncJob(job: SyncJob, pool: PgPool, flags: WorkerFlags): Promise<void> {
  const { key, account, scope, signal } = job;
  let secrets: string[] = [];
  try {
    const target = await scopeOf(account, scope, job.credentials);
    secrets = target.secrets;
    const opened = await target.open(signal);
    try {
      const mirror = await createPostgresMirror({ pool, source: key, table: flags.table });
      const {
        state: _state,
        key: _key,
        ...result
      } = await runSync(opened.syncable, {
        ...mirror.syncOptions,
        key,
        signal,
        batchSize: flags.batchSize,
      });
      log("sync", { key, source: opened.key, ...result }, secrets);
    } finally {
      await opened.close();
    }
  } catch (error) {
    scrub(error, secrets);
    log(
      signal.aborted ? "sync-stopped" : "sync-failed",
      {
        key,
        error: describeError(error, secrets),
        ...(signal.aborted ? {} : { parked: isPermanent(error) }),
      },
      secrets,
    );
    throw error;
  }
}

/**
 * One scope of an account, ready to open: its adapter, and the environment (with the secrets to
 * redact) that the account's credentials give it.
 */
async function scopeOf(
  account: AccountRecord,
  scope: string,
  credentials: unknown,
): Promise<{ secrets: string[]; open(signal: AbortSignal): Promise<OpenedSource> }> {
  const { url, cli } = await accountSource(account.adapter, scope);
  const { env, secrets } = jobEnvironment(account.id, process.env, credentials as Credentials, cli);
  return { secrets, open: (signal) => cli.open(url, { env, signal }) };
}

/**
 * Watches an account (`push: {"watch": true}`): opens each of its scopes and turns the scope's
 * notifications (IMAP IDLE / NOTIFY, …) into sync requests until the worker lets it go. A push
 * stream that fails or ends hands the account back (another worker, or this one later, retries).
 */
async function watchAccount(account: AccountRecord, context: WatchContext): Promise<void> {
  const { signal, notify } = context;
  const opened: { scope: string; source: OpenedSource }[] = [];
  const subscriptions: Unsubscribable[] = [];
  const secrets: string[] = [];
  try {
    // Every source opened is in `opened` before anything else can fail: the finally closes it.
    for (const scope of account.scopes) {
      signal.throwIfAborted();
      const target = await scopeOf(account, scope, context.credentials);
      secrets.push(...target.secrets);
      opened.push({ scope, source: await target.open(signal) });
    }
    await new Promise<never>((_, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted) onAbort();
      for (const { scope, source } of opened) {
        subscriptions.push(
          source.syncable.notifications().subscribe({
            next: () => void notify(scope).catch(() => {}),
            error: reject,
            complete: () => reject(new Error(`the push stream of ${source.key} ended`)),
          }),
        );
      }
      log("watch", { account: account.id, phase: "started", scopes: account.scopes });
    });
  } catch (error) {
    if (!signal.aborted) {
      scrub(error, secrets);
      log("watch-failed", { account: account.id, error: describeError(error, secrets) }, secrets);
      throw error;
    }
  } finally {
    for (const s of subscriptions) s.unsubscribe();
    await Promise.all(opened.map(({ source }) => source.close().catch(() => {})));
  }
}

/** Resolves with the first SIGTERM / SIGINT; a second one exits at once (143 / 130). */
function firstSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let first: NodeJS.Signals | undefined;
  let resolve: (name: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const on = (name: NodeJS.Signals) => {
    if (first) process.exit(name === "SIGTERM" ? EXIT.terminated : EXIT.interrupted);
    first = name;
    resolve(name);
  };
  process.on("SIGTERM", on);
  process.on("SIGINT", on);
  return {
    received,
    dispose() {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
    },
  };
}

export async function runWorker(flags: WorkerFlags): Promise<void> {
  const signals = firstSignal();
  const url = dbUrl(flags);
  const getCredentials = flags.credentials
    ? await loadCredentialsModule(flags.credentials)
    : undefined;
  const pool = await openPgPool(url, flags.concurrency + 4);
  try {
    const worker = await createWorker({
      pool,
      concurrency: flags.concurrency,
      perAccount: flags.perAccount,
      pollIntervalMs: flags.poll * 1000,
      tickMs: flags.tick * 1000,
      expireInSeconds: flags.expire,
      isPermanent,
      getCredentials: async (accountId) => {
        try {
          return await credentialsOf(accountId, getCredentials);
        } catch (error) {
          log("sync-failed", {
            account: accountId,
            error: describeError(error),
            parked: isPermanent(error),
          });
          throw error;
        }
      },
      sync: (job) => syncJob(job, pool, flags),
      watch: watchAccount,
      maxWatches: flags.maxWatches,
      onError: (error, during) => log("worker-error", { during, error: describeError(error) }),
    });
    log("worker", {
      phase: "started",
      pid: process.pid,
      concurrency: flags.concurrency,
      perAccount: flags.perAccount,
      pollSeconds: flags.poll,
    });
    const signal = await signals.received;
    log("worker", { phase: "stopping", signal, running: worker.running });
    await worker.stop();
    log("worker", { phase: "stopped" });
  } finally {
    await pool.end?.();
    signals.dispose();
  }
}

export function workerCommand(program: Command): void {
  program
    .command("worker")
    .description(
      "run the sync jobs of the accounts registry into the PostgreSQL mirror (one process of a fleet)",
    )
    .option("--db <url>", "PostgreSQL URL (default $DATABASE_URL)")
    .option("--concurrency <n>", "jobs at once in this process", positiveInt, 8)
    .option("--per-account <n>", "jobs of one account at once in this process", positiveInt, 1)
    .option("--poll <s>", "safety poll interval of every key, in seconds", positiveNumber, 300)
    .option(
      "--tick <s>",
      "how often to look for due polls and idle jobs, in seconds",
      positiveNumber,
      1,
    )
    .option(
      "--expire <s>",
      "a job running longer than this is given to another worker, in seconds",
      positiveInt,
      900,
    )
    .option("--batch-size <n>", "changes per batch (one transaction each)", positiveInt, 500)
    .option(
      "--max-watches <n>",
      'accounts with push {"watch": true} whose push connections this process holds at most',
      positiveInt,
      100,
    )
    .option("--table <name>", "the mirror table (states in <name>_state)", "mirror")
    .option(
      "--credentials <module>",
      "an ES module exporting getCredentials(accountId) → { password?, token?, env? }",
    )
    .action(async (opts: WorkerFlags) => {
      await runWorker(opts);
    });
}
