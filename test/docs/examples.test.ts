/**
 * Every fenced `ts` block of README.md and docs/ is type-checked against the packed package
 * (strict, skipLibCheck off, as a user's project would), and run unless marked no-run, so the
 * shipped docs cannot rot. Needs `npm run build` first (CI builds before testing).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { installedProject, isBuilt, type Project, repoRoot, tsc } from "../package/installed.js";
import { extractExamples } from "./examples.js";

/**
 * Docs whose examples are being rewritten elsewhere (issue 12); listed here so the rest is
 * enforced meanwhile. Remove an entry when its examples are self-contained.
 */
const PENDING = ["docs/adapters/imap.md", "docs/adapters/dav.md", "docs/adapters/google.md"];
const pending = (where: string) => PENDING.some((doc) => where.startsWith(`${doc}:`));
const all = extractExamples(repoRoot);
const examples = all.filter((e) => !pending(e.where));
const tsxLoader = pathToFileURL(join(repoRoot, "node_modules/tsx/dist/loader.mjs")).href;

// google-auth-library is what Google users already have; the docs show it, deltasync does not
// depend on it. This is the part of its API the docs use.
const GOOGLE_AUTH_STUB = `declare module "google-auth-library" {
  export class OAuth2Client {
    constructor(options?: { clientId?: string; clientSecret?: string; redirectUri?: string });
    generateAuthUrl(options: { access_type?: string; prompt?: string; scope?: string | string[] }): string;
    getToken(code: string): Promise<{ tokens: { refresh_token?: string | null; access_token?: string | null } }>;
    setCredentials(credentials: { refresh_token?: string | null; access_token?: string | null }): void;
    getAccessToken(): Promise<{ token?: string | null }>;
  }
  export class JWT {
    constructor(options: { email?: string; key?: string; keyFile?: string; scopes?: string[]; subject?: string });
    getAccessToken(): Promise<{ token?: string | null }>;
  }
}
`;

describe.skipIf(!isBuilt)("documentation examples (after npm run build)", () => {
  let project: Project;
  beforeAll(() => {
    project = installedProject({
      extra: ["better-sqlite3", "@types/better-sqlite3", "fast-check"],
    });
    for (const ex of examples) project.write(join("examples", ex.file), ex.code);
    project.write("examples/google-auth-library.d.ts", GOOGLE_AUTH_STUB);
    project.write(
      "tsconfig.json",
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2023"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          types: ["node"],
          strict: true,
          skipLibCheck: false,
          noEmit: true,
        },
        include: ["examples"],
      }),
    );
  });

  it("finds the examples", () => {
    expect(examples.length).toBeGreaterThan(10);
  });

  for (const ex of all.filter((e) => pending(e.where))) it.todo(`${ex.where} (pending rewrite)`);

  it("every example type-checks against the installed package", () => {
    const out = tsc(project.dir);
    // Point at the doc line instead of the extracted file.
    const located = out.replace(
      /[^\s]*examples\/([\w.-]+?)-L(\d+)\.ts\((\d+),(\d+)\)/g,
      (_m, f, l, line) => `${f}:${Number(l) + Number(line)}`,
    );
    expect(located).toBe("");
  });

  it.each(examples.filter((e) => e.run).map((e) => [e.where, e] as const))(
    "%s runs",
    (_where, ex) => {
      const r = spawnSync(process.execPath, ["--import", tsxLoader, join("examples", ex.file)], {
        cwd: project.dir,
        encoding: "utf8",
        timeout: 30_000,
        env: { ...process.env, NO_COLOR: "1" },
      });
      expect(r.stderr, ex.where).not.toMatch(/Error/);
      expect(r.status, `${ex.where}\n${r.stderr}`).toBe(0);
    },
  );
});
