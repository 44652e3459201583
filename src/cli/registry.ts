/**
 * URL scheme → adapter. Each adapter's `adapters/<name>/cli.ts` exports `cliSource`; it is
 * imported only when its scheme is used, so a missing or broken adapter affects only its URLs.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ArgumentError } from "../core/errors.js";
import type { CliSource } from "./source.js";

/** Which adapter folder handles each scheme. */
export const SCHEMES: Readonly<Record<string, string>> = {
  memory: "memory",
  imap: "imap",
  imaps: "imap",
  google: "google",
  graph: "graph",
  aurinko: "aurinko",
  dav: "dav",
  davs: "dav",
  caldav: "dav",
  caldavs: "dav",
  carddav: "dav",
  carddavs: "dav",
};

/** Loads the adapter's `cliSource` for a URL's scheme, with a one-line error when it can't. */
export async function loadCliSource(scheme: string): Promise<CliSource> {
  const name = SCHEMES[scheme];
  if (!name) {
    const known = [...new Set(Object.keys(SCHEMES))].join(", ");
    throw new ArgumentError(`unknown source scheme "${scheme}:" (known: ${known})`);
  }
  const file = adapterCliFile(name);
  if (!file) {
    throw new ArgumentError(
      `the "${name}" adapter has no command-line support in this build (adapters/${name}/cli is missing)`,
    );
  }
  const mod = (await import(pathToFileURL(file).href)) as { cliSource?: CliSource };
  const source = mod.cliSource;
  if (!source || typeof source.open !== "function") {
    throw new ArgumentError(`adapters/${name}/cli does not export a cliSource`);
  }
  if (!source.schemes.includes(scheme)) {
    throw new ArgumentError(`the "${name}" adapter does not handle "${scheme}:" URLs`);
  }
  return source;
}

/**
 * Where an adapter's CLI module is: `adapters/<name>/cli.ts` when running from source (tsx),
 * `dist/adapters/<name>/cli.js` in the built package. Found from the package root, because the
 * bundler may move this file into a shared chunk.
 */
function adapterCliFile(name: string): string | undefined {
  const root = packageRoot();
  if (!root) return undefined;
  const source = join(root, "adapters", name, "cli.ts");
  const built = join(root, "dist", "adapters", name, "cli.js");
  const order = fileURLToPath(import.meta.url).endsWith(".ts") ? [source, built] : [built, source];
  return order.find((f) => existsSync(f));
}

/** The directory of deltasync's package.json (from src/ or dist/, wherever the bundler put us). */
function packageRoot(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)), i = 0; i < 8; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
  }
  return undefined;
}

/** The package's version, for `--version`. */
export function packageVersion(): string {
  const root = packageRoot();
  if (!root) return "unknown";
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

/** The usage lines of every adapter that loads (for `deltasync sources`). */
export async function listSources(): Promise<{ adapter: string; usage: string }[]> {
  const out: { adapter: string; usage: string }[] = [];
  for (const name of [...new Set(Object.values(SCHEMES))]) {
    const scheme = Object.keys(SCHEMES).find((s) => SCHEMES[s] === name) as string;
    try {
      out.push({ adapter: name, usage: (await loadCliSource(scheme)).usage });
    } catch (error) {
      out.push({
        adapter: name,
        usage: `(unavailable: ${error instanceof Error ? error.message : String(error)})`,
      });
    }
  }
  return out;
}

/** Parses a source URL, with a one-line error for a malformed one. */
export function parseSourceUrl(text: string): URL {
  try {
    const url = new URL(text);
    return url;
  } catch {
    throw new ArgumentError(
      `not a source URL: ${JSON.stringify(text)} (e.g. memory:demo?items=5000)`,
    );
  }
}
