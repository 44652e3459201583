import { existsSync, readdirSync } from "node:fs";
import { defineConfig } from "tsup";

// One entry per public subpath: ".", "./testing", "./adapters/<name>", plus the CLI.
const adapters = readdirSync("adapters", { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

export default defineConfig({
  entry: {
    index: "src/index.ts",
    "testing/index": "src/testing/index.ts",
    "cli/main": "src/cli/main.ts",
    ...Object.fromEntries(adapters.map((a) => [`adapters/${a}/index`, `adapters/${a}/index.ts`])),
    // The CLI loads `dist/adapters/<name>/cli.js` for the URL schemes each adapter handles.
    ...Object.fromEntries(
      adapters
        .filter((a) => existsSync(`adapters/${a}/cli.ts`))
        .map((a) => [`adapters/${a}/cli`, `adapters/${a}/cli.ts`]),
    ),
  },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  splitting: true,
  shims: true,
});
