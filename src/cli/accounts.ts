/**
 * `deltasync accounts add|list|remove`: the accounts registry of a worker fleet, in the
 * PostgreSQL database named by `--db` or `DATABASE_URL`. Credentials are never taken here.
 */
import type { Command } from "commander";
import { ArgumentError } from "../core/errors.js";
import { createAccountRegistry } from "../scale/accounts.js";
import { sourceUrlOf } from "./account-source.js";
import type { Output } from "./output.js";

/** The database of a fleet command: `--db`, else `DATABASE_URL`. */
export function dbUrl(opts: { db?: string }): string {
  const url = opts.db ?? process.env.DATABASE_URL;
  if (!url) throw new ArgumentError("give --db <postgres-url> or set DATABASE_URL");
  return url;
}

export function accountsCommand(program: Command, out: (dataOnStdout?: boolean) => Output): void {
  const accounts = program
    .command("accounts")
    .description("manage the accounts a worker fleet keeps in sync (PostgreSQL)");
  accounts
    .command("add <id> <adapter> <scopes...>")
    .description(
      "add or replace an account (adding again unparks its keys); adapter: a scheme (google) or a source URL with {scope}",
    )
    .option("--db <url>", "PostgreSQL URL (default $DATABASE_URL)")
    .option("--push <json>", "push settings, as JSON")
    .action(async (id: string, adapter: string, scopes: string[], opts) => {
      // A scheme or URL template the worker could not open is refused now, not at its first job.
      for (const scope of scopes) sourceUrlOf(adapter, scope);
      const registry = await createAccountRegistry({ connectionString: dbUrl(opts) });
      try {
        const push =
          opts.push === undefined ? undefined : (JSON.parse(opts.push) as Record<string, unknown>);
        await registry.add({ id, adapter, scopes, ...(push ? { push } : {}) });
        out().emit(
          { event: "added", id, adapter, scopes },
          `added ${id} (${adapter}: ${scopes.join(", ")})`,
        );
      } finally {
        await registry.close();
      }
    });
  accounts
    .command("list")
    .description("list accounts and their keys: next poll, failures, parked reason")
    .option("--db <url>", "PostgreSQL URL (default $DATABASE_URL)")
    .action(async (opts) => {
      const registry = await createAccountRegistry({ connectionString: dbUrl(opts) });
      try {
        const o = out(true);
        const keys = await registry.keys();
        for (const a of await registry.list()) {
          o.emit({ event: "account", ...a }, `${a.id}  ${a.adapter}`);
          for (const k of keys.filter((k) => k.account === a.id)) {
            const status = k.parkedReason
              ? `PARKED: ${k.parkedReason}`
              : `next poll ${k.nextPollAt}${k.failures ? `, ${k.failures} failures (${k.lastError})` : ""}`;
            o.emit({ event: "key", ...k }, `  ${k.key}  ${status}`);
          }
        }
      } finally {
        await registry.close();
      }
    });
  accounts
    .command("remove <id>")
    .description("remove an account and its keys")
    .option("--db <url>", "PostgreSQL URL (default $DATABASE_URL)")
    .action(async (id: string, opts) => {
      const registry = await createAccountRegistry({ connectionString: dbUrl(opts) });
      try {
        const removed = await registry.remove(id);
        if (!removed) throw new ArgumentError(`no account ${JSON.stringify(id)}`);
        out().emit({ event: "removed", id }, `removed ${id}`);
      } finally {
        await registry.close();
      }
    });
}
