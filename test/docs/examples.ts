/**
 * The fenced `ts` blocks of README.md and docs/, for the doc-example test.
 * A block preceded by `<!-- doc-test: no-run (why) -->` is type-checked but not run (it needs
 * a real account or server).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

export interface Example {
  /** `docs/orchestrator.md:128` (the line of the opening fence). */
  where: string;
  /** A file name for it: `docs-orchestrator-md-L128.ts`. */
  file: string;
  code: string;
  run: boolean;
  why?: string;
}

export function docFiles(root: string): string[] {
  const out = [join(root, "README.md")];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".md")) out.push(path);
    }
  };
  walk(join(root, "docs"));
  return out.sort();
}

export function extractExamples(root: string): Example[] {
  const examples: Example[] = [];
  for (const path of docFiles(root)) {
    const name = relative(root, path);
    const lines = readFileSync(path, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (!/^```(ts|typescript)\s*$/.test(lines[i] ?? "")) continue;
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ""); i++)
        body.push(lines[i] ?? "");
      const marker = /^<!--\s*doc-test:\s*no-run\b\s*(.*?)\s*-->\s*$/.exec(lines[start - 1] ?? "");
      examples.push({
        where: `${name}:${start + 1}`,
        file: `${name.replace(/[^A-Za-z0-9]+/g, "-")}-L${start + 1}.ts`,
        // `export {}` makes every block a module (top-level await, no shared globals).
        code: `${body.join("\n")}\nexport {};\n`,
        run: !marker,
        why: marker?.[1] || undefined,
      });
    }
  }
  return examples;
}
