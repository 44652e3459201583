/**
 * graph: full sync of a 100k-message folder (`mailFolders/inbox/messages/delta`, 100 per page)
 * from the Graph emulator running in its own process, into a no-op importer. deltasync (zod
 * validation, the 4-request limiter, read-ahead on and off) vs a hand-written undici delta loop
 * (follows nextLink to the deltaLink, no validation: the wire limit) and the Microsoft Graph SDK
 * (`@microsoft/microsoft-graph-client` 3, `PageIterator` over its default middleware chain).
 * Same run, same server.
 *
 * GRAPH_BENCH_MESSAGES (100000), GRAPH_BENCH_ROUNDS (3, median), GRAPH_BENCH_PAGE (100).
 */
import {
  Client,
  type Context,
  type Middleware,
  MiddlewareFactory,
  PageIterator,
} from "@microsoft/microsoft-graph-client";
import { Agent, request } from "undici";
import { createGraphAccount, DEFAULT_MESSAGE_SELECT } from "../adapters/graph/index.js";
import { startEmulatorProcess } from "./emulator-process.js";

const MESSAGES = Number(process.env.GRAPH_BENCH_MESSAGES ?? 100_000);
const ROUNDS = Number(process.env.GRAPH_BENCH_ROUNDS ?? 3);
const PAGE = Number(process.env.GRAPH_BENCH_PAGE ?? 100);

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

/**
 * The SDK only follows `https://` links (its URL parser strips no other scheme), so it talks to the
 * emulator as through a TLS-terminating proxy: https outside, `X-Forwarded-Proto: https` and plain
 * http on the wire, like the other clients. Otherwise its default chain (auth, retry, redirect,
 * telemetry) runs unchanged; only the last handler, a bare `fetch`, is this one.
 */
class PlainHttpTransport implements Middleware {
  async execute(context: Context): Promise<void> {
    const url = typeof context.request === "string" ? context.request : context.request.url;
    const headers = new Headers(
      context.options?.headers as ConstructorParameters<typeof Headers>[0],
    );
    headers.set("x-forwarded-proto", "https");
    context.response = await fetch(url.replace(/^https:/, "http:"), {
      ...context.options,
      headers,
    });
  }
}

async function graphSdk(base: string, sink: Counter): Promise<void> {
  const middleware = MiddlewareFactory.getDefaultMiddlewareChain({
    getAccessToken: async () => "bench",
  });
  middleware[middleware.length - 1] = new PlainHttpTransport();
  const client = Client.initWithMiddleware({
    baseUrl: `https://${new URL(base).host}/`,
    defaultVersion: "v1.0",
    middleware,
  });
  const prefer = `odata.maxpagesize=${PAGE}, IdType="ImmutableId"`;
  const first = await client
    .api("/me/mailFolders/inbox/messages/delta")
    .header("Prefer", prefer)
    .select(["id", ...DEFAULT_MESSAGE_SELECT])
    .get();
  const pages = new PageIterator(
    client,
    first,
    (m: { "@removed"?: unknown }) => {
      if (m["@removed"] === undefined) sink.n++;
      return true;
    },
    { headers: { Prefer: prefer } },
  );
  await pages.iterate();
  if (!pages.getDeltaLink()) throw new Error("SDK: no deltaLink");
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

type Variant = [string, (url: string, sink: Counter) => Promise<void>];
const VARIANTS: Variant[] = [
  ["hand-written undici delta loop", handWritten],
  ["@microsoft/microsoft-graph-client PageIterator", graphSdk],
  ["deltasync folder(inbox), read-ahead off", (url, s) => deltasync(url, s, false)],
  ["deltasync folder(inbox) (default: read-ahead on)", (url, s) => deltasync(url, s, true)],
];

async function main(): Promise<void> {
  const { url, stop } = await startEmulatorProcess("test/graph/emulator-main.ts", [
    "--messages",
    String(MESSAGES),
  ]);
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
    const sdk = median(times.get(VARIANTS[1]?.[0] as string) as number[]);
    console.log(
      `\n### ${MESSAGES} messages, ${PAGE} per page, no-op importer; median of ${ROUNDS}\n`,
    );
    console.log("| client | time (ms) | messages/s | vs hand-written loop | vs SDK |");
    console.log("| --- | ---: | ---: | ---: | ---: |");
    for (const [name] of VARIANTS) {
      const ms = median(times.get(name) as number[]);
      console.log(
        `| ${name} | ${ms.toFixed(0)} | ${Math.round((MESSAGES / ms) * 1000).toLocaleString("en-US")} | ${(baseline / ms).toFixed(2)}× | ${(sdk / ms).toFixed(2)}× |`,
      );
    }
  } finally {
    stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
