/**
 * aurinko: full sync of N contacts (pages of 250) from the Aurinko emulator, deltasync (zod-
 * validated, default read-ahead) vs a hand-written undici loop (POST sync, the updated stream
 * by deltaToken then pageToken, the deleted stream; no validation: the wire limit), into a
 * no-op importer. Same run, same server, which runs in its own process (as Aurinko is remote):
 * the clients' own CPU is what differs, so it is reported too (steadier than wall time on a
 * shared machine). Runs alternate after untimed warm-up runs of each (both clients, and the
 * emulator, reach their optimised code: runs get faster for about fifteen rounds, up to 2.5× in
 * all); medians.
 *
 * AURINKO_BENCH_CONTACTS (20000), AURINKO_BENCH_ROUNDS (15, median), AURINKO_BENCH_WARMUP (15).
 */
import { Agent, request } from "undici";
import { createAurinkoAccount } from "../adapters/aurinko/index.js";
import { startEmulatorProcess } from "./emulator-process.js";

const N = Number(process.env.AURINKO_BENCH_CONTACTS ?? 20_000);
const ROUNDS = Number(process.env.AURINKO_BENCH_ROUNDS ?? 15);
const WARMUP = Number(process.env.AURINKO_BENCH_WARMUP ?? 15);

interface PageJson {
  records: { id: string }[];
  nextPageToken?: string;
  nextDeltaToken?: string;
}

async function handLoop(base: string, token: string): Promise<number> {
  const agent = new Agent({ connections: 8 });
  const headers = { authorization: `Bearer ${token}`, accept: "application/json" };
  const json = async <T>(method: "GET" | "POST", path: string): Promise<T> => {
    const res = await request(`${base}${path}`, { method, headers, dispatcher: agent });
    return (await res.body.json()) as T;
  };
  let n = 0;
  const start = await json<{ syncUpdatedToken: string; syncDeletedToken: string }>(
    "POST",
    "contacts/sync",
  );
  let query = `deltaToken=${encodeURIComponent(start.syncUpdatedToken)}`;
  for (;;) {
    const page = await json<PageJson>("GET", `contacts/sync/updated?${query}`);
    n += page.records.length;
    if (!page.nextPageToken) break;
    query = `pageToken=${encodeURIComponent(page.nextPageToken)}`;
  }
  query = `deltaToken=${encodeURIComponent(start.syncDeletedToken)}`;
  for (;;) {
    const page = await json<PageJson>("GET", `contacts/sync/deleted?${query}`);
    n += page.records.length;
    if (!page.nextPageToken) break;
    query = `pageToken=${encodeURIComponent(page.nextPageToken)}`;
  }
  await agent.close();
  return n;
}

async function deltasync(base: string, token: string): Promise<number> {
  const account = createAurinkoAccount({ baseUrl: base, accessToken: token });
  let n = 0;
  await account.contacts().sync({ update: () => void n++, delete: () => void n++ });
  await account.close();
  return n;
}

/** Wall time, and this process's CPU time (the client's: the server runs in its own process). */
interface Timing {
  wall: number;
  cpu: number;
}

async function time(fn: () => Promise<number>): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await fn();
  if (n !== N) throw new Error(`expected ${N} records, got ${n}`);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const emulator = await startEmulatorProcess("test/aurinko/emulator-main.ts", [
  "--contacts",
  String(N),
  "--page",
  "250",
]);
try {
  const hand: Timing[] = [];
  const ds: Timing[] = [];
  let cold: { hand: Timing; ds: Timing } | undefined;
  for (let r = 0; r < WARMUP; r++) {
    const h = await time(() => handLoop(emulator.url, "bench"));
    const d = await time(() => deltasync(emulator.url, "bench"));
    cold ??= { hand: h, ds: d };
  }
  for (let r = 0; r < ROUNDS; r++) {
    // Either goes first in turn: the one after pays for the garbage of the one before.
    if (r % 2 === 0) hand.push(await time(() => handLoop(emulator.url, "bench")));
    ds.push(await time(() => deltasync(emulator.url, "bench")));
    if (r % 2 === 1) hand.push(await time(() => handLoop(emulator.url, "bench")));
  }
  const h = median(hand.map((t) => t.wall));
  const d = median(ds.map((t) => t.wall));
  const hc = median(hand.map((t) => t.cpu));
  const dc = median(ds.map((t) => t.cpu));
  console.log(
    `| client | ${N} contacts, pages of 250 (median of ${ROUNDS}) | records/s | client CPU |`,
  );
  console.log("| --- | --- | --- | --- |");
  console.log(
    `| hand-written undici loop | ${h.toFixed(0)} ms | ${((N / h) * 1000).toFixed(0)} | ${hc.toFixed(0)} ms |`,
  );
  console.log(
    `| deltasync \`contacts().sync\` | ${d.toFixed(0)} ms | ${((N / d) * 1000).toFixed(0)} | ${dc.toFixed(0)} ms |`,
  );
  // Each round's two runs ran back to back, in the same conditions: the median of their
  // ratios is steadier than the ratio of the medians when the machine's speed drifts.
  const paired = median(hand.map((t, i) => t.wall / (ds[i] as Timing).wall));
  console.log(
    `\ndeltasync / hand-written throughput: ${paired.toFixed(2)}× (median of the rounds' ratios; ratio of the medians ${(h / d).toFixed(2)}×)`,
  );
  console.log(`deltasync / hand-written client CPU: ${(dc / hc).toFixed(2)}×`);
  if (cold) {
    console.log(
      `first (cold) run: hand-written ${cold.hand.wall.toFixed(0)} ms, deltasync ${cold.ds.wall.toFixed(0)} ms (${(cold.hand.wall / cold.ds.wall).toFixed(2)}×)`,
    );
  }
} finally {
  emulator.stop();
}
