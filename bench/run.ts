/**
 * Runs every benchmark (bench/*.bench.ts) in its own process, one after another, so one
 * benchmark's heap never skews the next. `npm run bench -- memory google` runs a subset.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();

console.log(
  `# deltasync benchmarks — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
);
let failed = 0;
for (const file of files) {
  console.log(`\n## ${file.replace(".bench.ts", "")}`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", join(here, file)], {
    stdio: "inherit",
  });
  if (r.status !== 0) {
    failed++;
    console.log(`(${file} failed with exit code ${r.status})`);
  }
}
process.exit(failed ? 1 : 0);
