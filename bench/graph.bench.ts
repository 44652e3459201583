/**
 * graph: full sync of a 100k-message folder (`mailFolders/inbox/messages/delta`, 100 per page)
 * from the Graph emulator running in its own process, into a no-op importer. deltasync (zod
 * validation, the 4-request limiter, read-ahead on and off) vs a hand-written undici delta loop
 * (follows nextLink to the deltaLink, no validation: the wire limit). Same run, same server.
 *
 * `@microsoft/microsoft-graph-client`'s PageIterator is not in this run: the package is not a
 * dependency of this repository (see docs/benchmarks.md).
 *
 * GRAPH_BENCH_MESSAGES (100000), GRAPH_BENCH_ROUNDS (3, median), GRAPH_BENCH_PAGE (100).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { createGraphAccount, DEFAULT_MESSAGE_SELECT } from "../adapters/graph/index.js";

const MESSAGES = Number(process.env.GRAPH_BENCH_MESSAGES ?? 100_000);
const ROUNDS = Number(process.env.GRAPH_BENCH_ROUNDS ?? 3);
const PAGE = Number(process.env.GRAPH_BENCH_PAGE ?? 100);
const here = dirname(fileURLToPath(import.meta.url));

interface Counter {
  n: number;
}

async function handWritten(base: string, sink: Counter): Promise<void> {
  const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
  const headers = {
    authorization: "Bearer bench",
    prefer: `odata.maxpagesize=${PAGE}, IdType="ImmutableId"`,
  };
  const first = new URL("me/mailFolders/inbox/messages/delta", base);
  first.searchParams.set("$select", ["id", ...DEFAULT_MESSAGE_SELECT].join(","));
  let next: string | undefined = first.href;
  let deltaLink: string | undefined;
  while (next) {
    const res = await request(next, { dispatcher: agent, headers });
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    const body = (await res.body.json()) as {
      value: { id: string; "@removed"?: unknown }[];
      "@odata.nextLink"?: string;
      "@odata.deltaLink"?: string;
    };
    for (const m of body.value) if (m["@removed"] === undefined) sink.n++;
    next = body["@odata.nextLink"];
    deltaLink = body["@odata.deltaLink"];
  }
  if (!deltaLink) throw new Error("no deltaLink");
  await agent.close();
}

async function deltasync(base: string, sink: Counter, prefetch: boolean): Promise<void> {
  const account = createGraphAccount({
    baseUrl: base,
    accessToken: "bench",
    pageSize: PAGE,
    prefetch,
  });
  await account.folder("inbox").sync({
    update: () => void sink.n++,
    delete: () => void sink.n++,
  });
  await account.close();
}

async function startEmulator(messages: number): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(here, "../test/graph/emulator-main.ts"),
      "--messages",
      String(messages),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once("exit", (code) => reject(new Error(`emulator exited with ${code}`)));
  });
  return { url, child };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

type Variant = [string, (url: string, sink: Counter) => Promise<void>];
const VARIANTS: Variant[] = [
  ["hand-written undici delta loop", handWritten],
  ["deltasync folder(inbox), read-ahead off", (url, s) => deltasync(url, s, false)],
  ["deltasync folder(inbox) (default: read-ahead on)", (url, s) => deltasync(url, s, true)],
];

async function main(): Promise<void> {
  const { url, child } = await startEmulator(MESSAGES);
  try {
    for (const [, run] of VARIANTS) await run(url, { n: 0 });
    const times = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length] as Variant);
      for (const [name, run] of order) {
        const sink = { n: 0 };
        global.gc?.();
        const t0 = performance.now();
        await run(url, sink);
        const ms = performance.now() - t0;
        if (sink.n !== MESSAGES) throw new Error(`${name}: imported ${sink.n} of ${MESSAGES}`);
        times.set(name, [...(times.get(name) ?? []), ms]);
      }
    }
    const baseline = median(times.get(VARIANTS[0]?.[0] as string) as number[]);
    console.log(
      `\n### ${MESSAGES} messages, ${PAGE} per page, no-op importer; median of ${ROUNDS}\n`,
    );
    console.log("| client | time (ms) | messages/s | vs hand-written loop |");
    console.log("| --- | ---: | ---: | ---: |");
    for (const [name] of VARIANTS) {
      const ms = median(times.get(name) as number[]);
      console.log(
        `| ${name} | ${ms.toFixed(0)} | ${Math.round((MESSAGES / ms) * 1000).toLocaleString("en-US")} | ${(baseline / ms).toFixed(2)}× |`,
      );
    }
  } finally {
    child.kill("SIGTERM");
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
