/**
 * The package as a user gets it: `npm pack` of the built repository, unpacked into a fresh
 * project's node_modules, with only the dependencies a user would have (linked from this
 * repository's node_modules). Needs `npm run build` first (CI builds before testing).
 */
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export const repoRoot = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const isBuilt = existsSync(join(repoRoot, "dist/index.js"));

let tarball: string | undefined;

/** `npm pack` once per test file. */
function pack(): string {
  if (tarball) return tarball;
  const dir = mkdtempSync(join(tmpdir(), "deltasync-pack-"));
  const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  tarball = join(dir, out.trim().split("\n").at(-1) as string);
  return tarball;
}

export interface Project {
  dir: string;
  /** Writes a file relative to the project. */
  write(file: string, text: string): string;
}

/**
 * A new project with deltasync installed from the tarball. `extra` are packages linked in
 * besides deltasync's dependencies, rxjs (its peer) and @types/node: e.g. `better-sqlite3`,
 * `fast-check`.
 */
export function installedProject(
  options: { type?: "module" | "commonjs"; extra?: string[] } = {},
): Project {
  const dir = mkdtempSync(join(tmpdir(), "deltasync-user-"));
  const modules = join(dir, "node_modules");
  const target = join(modules, "deltasync");
  mkdirSync(target, { recursive: true });
  execFileSync("tar", ["-xzf", pack(), "-C", target, "--strip-components=1"]);
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  const linked = [
    ...Object.keys(pkg.dependencies),
    "rxjs",
    "@types/node",
    "undici-types",
    ...(options.extra ?? []),
  ];
  for (const name of linked) link(name, modules);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "user-app", private: true, type: options.type ?? "module" }),
  );
  return {
    dir,
    write(file, text) {
      const path = join(dir, file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
      return path;
    },
  };
}

/** Links a package and, recursively, the dependencies npm hoisted next to it. */
function link(name: string, modules: string, seen = new Set<string>()): void {
  if (seen.has(name)) return;
  seen.add(name);
  const source = join(repoRoot, "node_modules", name);
  if (!existsSync(source)) return;
  const dest = join(modules, name);
  if (!existsSync(dest)) {
    mkdirSync(dirname(dest), { recursive: true });
    symlinkSync(source, dest);
  }
  const pkg = JSON.parse(readFileSync(join(source, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  for (const dep of Object.keys(pkg.dependencies ?? {})) link(dep, modules, seen);
}

/** Runs the repository's TypeScript compiler on a project; returns its diagnostics (or ""). */
export function tsc(project: string): string {
  try {
    execFileSync(
      process.execPath,
      [join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", project],
      {
        encoding: "utf8",
      },
    );
    return "";
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ""}${e.stderr ?? ""}`.trim() || String(error);
  }
}
