/**
 * An account's credentials for one job of `deltasync worker`, which stores none: they come from
 * the operator's module (`--credentials <file>` exporting `getCredentials(accountId)`) and from
 * per-account environment variables (`<NAME>__<accountId>`), and live only for that job.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { ArgumentError, errorMessage } from "../core/errors.js";
import { formatPath } from "../http/validate.js";
import { SECRET_NAME, secretsOf, withCredentialFlags } from "./commands.js";
import type { CliSource } from "./source.js";

/** What `getCredentials(accountId)` resolves with: the CLI's `--password` / `--token`, and variables. */
const CredentialsSchema = z
  .object({
    password: z.string().optional(),
    token: z.string().optional(),
    /** Adapter variables, e.g. `DELTASYNC_GOOGLE_REFRESH_TOKEN`, for this account only. */
    env: z.record(z.string(), z.string()).optional(),
  })
  .strict();

export type Credentials = z.infer<typeof CredentialsSchema>;

export type GetCredentials = (accountId: string) => unknown;

/** Imports the `--credentials` module and returns its `getCredentials`. */
export async function loadCredentialsModule(file: string): Promise<GetCredentials> {
  let mod: { getCredentials?: unknown; default?: { getCredentials?: unknown } };
  try {
    mod = await import(pathToFileURL(resolve(file)).href);
  } catch (cause) {
    throw new ArgumentError(`--credentials ${file}: cannot load it: ${errorMessage(cause)}`, {
      cause,
    });
  }
  const fn = mod.getCredentials ?? mod.default?.getCredentials;
  if (typeof fn !== "function") {
    throw new ArgumentError(`--credentials ${file}: it exports no getCredentials(accountId)`);
  }
  return fn as GetCredentials;
}

/**
 * Asks the module for an account's credentials and checks their shape (never echoing a value).
 * Without a module there is nothing to ask: the environment convention alone applies.
 */
export async function credentialsOf(
  accountId: string,
  getCredentials: GetCredentials | undefined,
): Promise<Credentials> {
  if (!getCredentials) return {};
  const raw = await getCredentials(accountId);
  // An explicit "none" must stop the account, not run it without credentials.
  if (raw === null || raw === undefined) {
    throw new ArgumentError(`no credentials for account ${accountId} (getCredentials gave ${raw})`);
  }
  const parsed = CredentialsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ArgumentError(
    `getCredentials(${JSON.stringify(accountId)}): ${issue ? `${formatPath(issue.path)}: ${issue.message}` : "invalid"} (expected { password?, token?, env? } of strings)`,
  );
}

/**
 * The environment one job's adapter reads: the worker's non-secret variables (base URLs, client
 * ids), the account's own `<NAME>__<accountId>` variables as `<NAME>`, then the module's `env`,
 * `password` and `token`. The worker's secret variables are not inherited: an account without
 * credentials of its own must fail, not sync another account's mailbox with them.
 * @returns the environment and the secret values in it, to redact from this job's errors.
 */
export function jobEnvironment(
  accountId: string,
  processEnv: Record<string, string | undefined>,
  credentials: Credentials,
  source: Pick<CliSource, "credentialFlags" | "schemes">,
): { env: Record<string, string | undefined>; secrets: string[] } {
  const suffix = `__${accountId}`;
  let env: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(processEnv)) {
    if (!name.includes("__") && !SECRET_NAME.test(name)) env[name] = value;
  }
  for (const [name, value] of Object.entries(processEnv)) {
    if (name.endsWith(suffix) && name.length > suffix.length) {
      env[name.slice(0, -suffix.length)] = value;
    }
  }
  env = withCredentialFlags({ ...env, ...credentials.env }, credentials, source);
  const secrets = secretsOf(env);
  for (const value of [credentials.password, credentials.token]) if (value) secrets.push(value);
  return { env, secrets };
}
