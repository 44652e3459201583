/**
 * The packed package in a user's project: types that check without the optional peers
 * (better-sqlite3, fast-check), in ESM, CJS and `moduleResolution: node10` projects; a clear
 * error from `deltasync/testing` without fast-check; what the tarball holds. Needs `npm run build`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { installedProject, isBuilt, repoRoot, tsc } from "./installed.js";

const USE_MAIN = `import { runSync, createSqliteStateStore, createMemoryStateStore, type Importer } from "deltasync";
import { createMemoryServer } from "deltasync/adapters/memory";
const folder = createMemoryServer().createStore("a").createFolder({ name: "I", kind: "mail" });
const importer: Importer = { update() {}, delete() {} };
export const used = [runSync, createSqliteStateStore, createMemoryStateStore, folder, importer];
`;
// deltasync/testing's types name fast-check's: they need it installed, like its code.
const USE = `${USE_MAIN}import type { ConformanceHarness } from "deltasync/testing";
export type H = ConformanceHarness<number>;
`;

const tsconfig = (options: Record<string, unknown>) =>
  JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      lib: ["ES2023"],
      types: ["node"],
      strict: true,
      skipLibCheck: false, // TypeScript's default: users check our .d.ts files too
      noEmit: true,
      ...options,
    },
    include: ["src"],
  });

describe.skipIf(!isBuilt)("the installed package (after npm run build)", () => {
  it("type-checks without better-sqlite3 or fast-check installed (ESM, NodeNext)", () => {
    const p = installedProject();
    expect(existsSync(join(p.dir, "node_modules/better-sqlite3"))).toBe(false);
    p.write("src/use.ts", USE_MAIN);
    p.write("tsconfig.json", tsconfig({ module: "NodeNext", moduleResolution: "NodeNext" }));
    expect(tsc(p.dir)).toBe("");
  });

  it("type-checks in a CommonJS project", () => {
    const p = installedProject({ type: "commonjs" });
    p.write("src/use.ts", USE_MAIN);
    p.write("tsconfig.json", tsconfig({ module: "NodeNext", moduleResolution: "NodeNext" }));
    expect(tsc(p.dir)).toBe("");
  });

  it("resolves the subpaths with moduleResolution node10 (typesVersions)", () => {
    const p = installedProject({ type: "commonjs", extra: ["fast-check"] });
    p.write("src/use.ts", USE_MAIN);
    const node10 = { module: "CommonJS", moduleResolution: "node10", esModuleInterop: true };
    p.write("tsconfig.json", tsconfig(node10));
    expect(tsc(p.dir)).toBe("");
    // fast-check's own .d.ts files need node16+ resolution: with node10, skipLibCheck.
    p.write("src/use.ts", USE);
    p.write("tsconfig.json", tsconfig({ ...node10, skipLibCheck: true }));
    expect(tsc(p.dir)).toBe("");
  });

  it("deltasync/testing without fast-check fails with an error saying what to install", () => {
    const p = installedProject();
    for (const [file, code] of [
      ["esm.mjs", 'await import("deltasync/testing");'],
      ["cjs.cjs", 'require("deltasync/testing");'],
    ] as const) {
      p.write(file, code);
      const r = spawnSync(process.execPath, [file], { cwd: p.dir, encoding: "utf8" });
      expect(r.status, file).not.toBe(0);
      expect(r.stderr, file).toContain(
        "deltasync/testing needs fast-check, an optional peer dependency: npm install --save-dev fast-check@4",
      );
    }
    // The main entry and the adapters load without it.
    p.write("main.mjs", 'await import("deltasync"); await import("deltasync/adapters/memory");');
    expect(spawnSync(process.execPath, ["main.mjs"], { cwd: p.dir }).status).toBe(0);
  });

  it("deltasync/testing works with fast-check installed (ESM and CJS)", () => {
    const p = installedProject({ extra: ["fast-check"] });
    p.write(
      "esm.mjs",
      'const t = await import("deltasync/testing"); if (typeof t.checkConformance !== "function") process.exit(1);',
    );
    p.write(
      "cjs.cjs",
      'const t = require("deltasync/testing"); if (typeof t.checkConformance !== "function") process.exit(1);',
    );
    for (const file of ["esm.mjs", "cjs.cjs"])
      expect(spawnSync(process.execPath, [file], { cwd: p.dir }).status, file).toBe(0);
  });

  it("ships a LICENSE and no source maps, and names a Node version its dependencies support", () => {
    const p = installedProject();
    const pkgDir = join(p.dir, "node_modules/deltasync");
    expect(readFileSync(join(pkgDir, "LICENSE"), "utf8")).toMatch(/^MIT License/);
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true }))
        e.isDirectory() ? walk(join(dir, e.name)) : files.push(join(dir, e.name));
    };
    walk(pkgDir);
    expect(files.filter((f) => f.endsWith(".map"))).toEqual([]);
    const size = files.reduce((n, f) => n + statSync(f).size, 0);
    // ESM + CJS + types + docs of every adapter, two-way and scale-out: ~1.75 MB. The bound
    // catches a dependency bundled by mistake (imapflow alone would add ~1 MB), not growth.
    expect(size).toBeLessThan(2_000_000);
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    // undici 7 needs >= 20.18.1; the README says the same.
    expect(pkg.engines.node).toBe(">=20.18.1");
    expect(readFileSync(join(repoRoot, "README.md"), "utf8")).toContain("Node ≥ 20.18");
    // Users share rxjs with us; fast-check is only for deltasync/testing.
    expect(pkg.dependencies.rxjs).toBeUndefined();
    expect(pkg.dependencies["fast-check"]).toBeUndefined();
    expect(pkg.peerDependencies.rxjs).toMatch(/^\^7/);
    expect(pkg.peerDependenciesMeta["fast-check"]).toEqual({ optional: true });
    // A range, never an exact pin; imapflow floats only by patch (imap-raw.ts uses internals).
    for (const [name, range] of Object.entries(pkg.dependencies as Record<string, string>))
      expect(range, name).toMatch(name === "imapflow" ? /^~/ : /^\^/);
  });

  it("with fast-check, deltasync/testing's types check too", () => {
    const p = installedProject({ extra: ["fast-check"] });
    p.write("src/use.ts", USE);
    p.write("tsconfig.json", tsconfig({ module: "NodeNext", moduleResolution: "NodeNext" }));
    expect(tsc(p.dir)).toBe("");
  });

  it("the shipped docs name no repository file that is not in the package", () => {
    const docs = [
      "README.md",
      ...readdirSync(join(repoRoot, "docs"), { recursive: true }).map(String),
    ]
      .filter((f) => f.endsWith(".md"))
      .map((f) => (f === "README.md" ? f : join("docs", f)));
    const offenders: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(repoRoot, doc), "utf8");
      for (const m of text.matchAll(/`((?:test|src)\/[^`\s]*)`/g))
        offenders.push(`${doc}: ${m[1]}`);
    }
    expect(offenders).toEqual([]);
  });

  it("the bin runs from the installed package", () => {
    const p = installedProject();
    const out = execFileSync(
      process.execPath,
      ["node_modules/deltasync/dist/cli/main.js", "--version"],
      {
        cwd: p.dir,
        encoding: "utf8",
      },
    );
    expect(out.trim()).toBe(
      JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version,
    );
  });
});
