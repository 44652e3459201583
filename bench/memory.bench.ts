/**
 * Full sync of N items from the memory server into a no-op importer, against a plain loop over
 * the same data in the same run; then peak RSS of a full sync at 100k and 1M items, each in a
 * fresh process.
 *
 *   npm run bench -- memory            (N = 1,000,000)
 *   BENCH_ITEMS=200000 npm run bench -- memory
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createMemoryServer, type MemoryServer } from "../adapters/memory/index.js";
import type { Importer, SyncObject } from "../src/index.js";

function build(n: number): MemoryServer {
  const server = createMemoryServer();
  const store = server.createStore("bench");
  const folders = Array.from({ length: 10 }, (_, i) =>
    store.createFolder({ name: `f${i}`, kind: "mail" }),
  );
  for (let i = 0; i < n; i++) {
    (folders[i % 10] as (typeof folders)[number]).createItem(
      { subject: `message ${i}`, from: "a@example.com", size: i },
      { read: i % 3 === 0 },
    );
  }
  return server;
}

let sink = 0;
const noop: Importer = {
  update(obj) {
    sink += obj.sourcekey.length;
  },
};

async function timeSync(server: MemoryServer): Promise<number> {
  const t = performance.now();
  await server.sync(noop);
  return performance.now() - t;
}

function timeLoop(items: ReturnType<MemoryServer["allItems"]>): number {
  const t = performance.now();
  for (const item of items) {
    const obj: SyncObject = {
      sourcekey: item.sourcekey,
      type: "item",
      parentKey: item.parentKey,
      data: { fields: item.fields, read: item.read },
    };
    noop.update?.(obj, { created: true });
  }
  return performance.now() - t;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

async function main(): Promise<void> {
  const rssArg = process.argv.indexOf("--rss");
  if (rssArg > 0) {
    const n = Number(process.argv[rssArg + 1]);
    const server = build(n);
    const before = process.memoryUsage().rss;
    await timeSync(server);
    console.log(
      JSON.stringify({
        n,
        maxRssMiB: process.resourceUsage().maxRSS / 1024,
        serverRssMiB: before / 2 ** 20,
      }),
    );
    return;
  }
  const n = Number(process.env.BENCH_ITEMS ?? 1_000_000);
  const server = build(n);
  const items = server.allItems();
  const syncs: number[] = [];
  const loops: number[] = [];
  for (let round = 0; round < 5; round++) {
    loops.push(timeLoop(items));
    syncs.push(await timeSync(server));
  }
  const s = median(syncs);
  const l = median(loops);
  console.log(`full sync of ${n.toLocaleString("en")} items into a no-op importer (median of 5)\n`);
  console.log("| what | time | items/s | ratio |\n| --- | --- | --- | --- |");
  console.log(
    `| plain loop over the same items (baseline) | ${l.toFixed(0)} ms | ${((n / l) * 1000).toFixed(0)} | 1.00× |`,
  );
  console.log(
    `| deltasync \`server.sync\` (journal, pages of 500, state) | ${s.toFixed(0)} ms | ${((n / s) * 1000).toFixed(0)} | ${(s / l).toFixed(2)}× the loop's time |`,
  );

  console.log("\npeak RSS of a process that builds the server and full-syncs it\n");
  console.log("| items | peak RSS | RSS after building the server |\n| --- | --- | --- |");
  const self = fileURLToPath(import.meta.url);
  for (const count of [100_000, 1_000_000]) {
    const r = spawnSync(process.execPath, ["--import", "tsx", self, "--rss", String(count)], {
      encoding: "utf8",
    });
    const line = r.stdout.trim().split("\n").pop() ?? "{}";
    const { maxRssMiB, serverRssMiB } = JSON.parse(line) as {
      maxRssMiB: number;
      serverRssMiB: number;
    };
    console.log(
      `| ${count.toLocaleString("en")} | ${maxRssMiB.toFixed(0)} MiB | ${serverRssMiB.toFixed(0)} MiB |`,
    );
  }
  if (sink < 0) console.log(sink);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
