import { existsSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { defineConfig } from "tsup";

// One entry per public subpath: ".", "./testing", "./adapters/<name>", plus the CLI.
const adapters = readdirSync("adapters", { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

const FAST_CHECK_MISSING =
  "deltasync/testing needs fast-check, an optional peer dependency: npm install --save-dev fast-check@4";

/**
 * fast-check is an optional peer needed only by `deltasync/testing`. A missing package in a
 * static import fails at link time with Node's generic message, before any code of ours runs, so
 * the entry becomes a small guard that checks for it and then loads the kit (`kit.js`).
 */
async function guardTestingEntry(): Promise<void> {
  renameSync("dist/testing/index.js", "dist/testing/kit.js");
  renameSync("dist/testing/index.cjs", "dist/testing/kit.cjs");
  const names = Object.keys(await import(pathToFileURL("dist/testing/kit.js").href)).sort();
  const message = JSON.stringify(FAST_CHECK_MISSING);
  writeFileSync(
    "dist/testing/index.js",
    `try {\n  import.meta.resolve("fast-check");\n} catch (cause) {\n  throw new Error(${message}, { cause });\n}\nconst kit = await import("./kit.js");\nexport const { ${names.join(", ")} } = kit;\n`,
  );
  writeFileSync(
    "dist/testing/index.cjs",
    `"use strict";\ntry {\n  require.resolve("fast-check");\n} catch (cause) {\n  throw new Error(${message}, { cause });\n}\nmodule.exports = require("./kit.cjs");\n`,
  );
}

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
  // No source maps in the package: they were 1.2 MB of its 2 MB, for unminified code.
  sourcemap: false,
  clean: true,
  target: "node20",
  splitting: true,
  shims: true,
  onSuccess: guardTestingEntry,
});
