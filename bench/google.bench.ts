/**
 * google: full sync of a 100k-event calendar (250 per page) from the Google emulator running in
 * its own process. deltasync (zod-validated, with and without read-ahead) vs a hand-written
 * undici loop (no validation: the wire limit) vs the official googleapis `events.list` loop, into
 * a no-op importer and into an SQLite upsert per event (better-sqlite3). Same run, same server.
 *
 * Scenarios: (1) 100k events with no added latency (localhost: the client's CPU is the limit and
 * a synchronous importer leaves little to overlap); (2) 20k events with a delay added before each
 * response (a network round trip), where reading page N+1 while page N imports pays off. With a
 * round trip L and an import time I per page, read-ahead can at best turn L + I into max(L, I):
 * the gain peaks (2x) when they are equal and fades when either dominates.
 *
 * GOOGLE_BENCH_EVENTS (100000), GOOGLE_BENCH_ROUNDS (3, median), GOOGLE_BENCH_LATENCY_EVENTS
 * (20000), GOOGLE_BENCH_LATENCY ("5,10,20,50" ms, comma-separated; "0" skips scenario 2).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { google } from "googleapis";
import { Agent, request } from "undici";
import { createGoogleAccount } from "../adapters/google/index.js";
import { runSync } from "../src/orchestrator/index.js";
import { createMemoryStateStore } from "../src/stores/index.js";
import { startEmulatorProcess } from "./emulator-process.js";

const EVENTS = Number(process.env.GOOGLE_BENCH_EVENTS ?? 100_000);
const ROUNDS = Number(process.env.GOOGLE_BENCH_ROUNDS ?? 3);
const LATENCY_EVENTS = Number(process.env.GOOGLE_BENCH_LATENCY_EVENTS ?? 20_000);
const LATENCIES = (process.env.GOOGLE_BENCH_LATENCY ?? "5,10,20,50")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const PAGE = 250;

interface EventJson {
  id: string;
  status?: string;
  etag?: string;
  summary?: string;
  start?: { dateTime?: string; date?: string };
}

/** What each client hands every event to. */
interface Sink {
  upsert(e: EventJson): void;
  remove(id: string): void;
  count(): number;
  close(): void;
}

function noopSink(): Sink {
  let n = 0;
  return {
    upsert: () => void n++,
    remove: () => void n++,
    count: () => n,
    close: () => {},
  };
}

/** One autocommitted upsert per event: what a simple real importer does. */
function sqliteSink(dir: string, name: string): Sink {
  const db = new Database(join(dir, `${name}-${Math.random().toString(36).slice(2)}.db`));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(
    "CREATE TABLE events (id TEXT PRIMARY KEY, etag TEXT, summary TEXT, start TEXT, data TEXT NOT NULL)",
  );
  const upsert = db.prepare(
    "INSERT INTO events (id, etag, summary, start, data) VALUES (?, ?, ?, ?, ?) " +
      "ON CONFLICT(id) DO UPDATE SET etag = excluded.etag, summary = excluded.summary, start = excluded.start, data = excluded.data",
  );
  const remove = db.prepare("DELETE FROM events WHERE id = ?");
  let n = 0;
  const file = db.name;
  return {
    upsert(e) {
      n++;
      upsert.run(
        e.id,
        e.etag ?? null,
        e.summary ?? null,
        e.start?.dateTime ?? e.start?.date ?? null,
        JSON.stringify(e),
      );
    },
    remove(id) {
      n++;
      remove.run(id);
    },
    count: () => n,
    close: () => {
      db.close();
      // Drop the file at once, so its writeback does not slow down the next client's run.
      for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    },
  };
}

async function handWritten(base: string, sink: Sink): Promise<void> {
  const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000 });
  let pageToken: string | undefined;
  let syncToken: string | undefined;
  do {
    const url = new URL("calendar/v3/calendars/primary/events", base);
    url.searchParams.set("maxResults", String(PAGE));
    if (pageToken) url.searchParams.set("pageToken", pageToken);
    const res = await request(url, {
      dispatcher: agent,
      headers: { authorization: "Bearer bench" },
    });
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    const body = (await res.body.json()) as {
      items?: EventJson[];
      nextPageToken?: string;
      nextSyncToken?: string;
    };
    for (const e of body.items ?? []) {
      if (e.status === "cancelled") sink.remove(e.id);
      else sink.upsert(e);
    }
    pageToken = body.nextPageToken;
    syncToken = body.nextSyncToken;
  } while (pageToken);
  if (!syncToken) throw new Error("no nextSyncToken");
  await agent.close();
}

async function googleapisLoop(base: string, sink: Sink): Promise<void> {
  const calendar = google.calendar({
    version: "v3",
    rootUrl: base,
    headers: { authorization: "Bearer bench" },
  });
  let pageToken: string | undefined;
  let syncToken: string | undefined | null;
  do {
    const res = await calendar.events.list({ calendarId: "primary", maxResults: PAGE, pageToken });
    for (const e of res.data.items ?? []) {
      if (e.status === "cancelled") sink.remove(e.id as string);
      else sink.upsert(e as EventJson);
    }
    pageToken = res.data.nextPageToken ?? undefined;
    syncToken = res.data.nextSyncToken;
  } while (pageToken);
  if (!syncToken) throw new Error("no nextSyncToken");
}

/** The orchestrator: batches of one page (the batch after is read while one is written), states saved in memory. */
async function orchestrated(base: string, sink: Sink): Promise<void> {
  const account = createGoogleAccount({ baseUrl: base, accessToken: "bench", pageSize: PAGE });
  await runSync(account.calendar("primary"), {
    batchSize: PAGE,
    store: createMemoryStateStore(),
    importer: {
      update: (obj) => sink.upsert(obj.data as EventJson),
      delete: (obj) => sink.remove(obj.sourcekey),
    },
  });
  await account.close();
}

async function deltasync(base: string, sink: Sink, prefetch: boolean): Promise<void> {
  const account = createGoogleAccount({
    baseUrl: base,
    accessToken: "bench",
    pageSize: PAGE,
    prefetch,
  });
  await account.calendar("primary").sync({
    update: (obj) => sink.upsert(obj.data as EventJson),
    delete: (obj) => sink.remove(obj.sourcekey),
  });
  await account.close();
}

const startEmulator = (events: number, latency: number) =>
  startEmulatorProcess("test/google/emulator-main.ts", [
    "--events",
    String(events),
    "--latency",
    String(latency),
  ]);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

type Variant = [string, (url: string, sink: Sink) => Promise<void>];

const VARIANTS: Variant[] = [
  ["hand-written undici loop", handWritten],
  ["googleapis events.list loop", googleapisLoop],
  ["deltasync (read-ahead off)", (url, s) => deltasync(url, s, false)],
  ["deltasync (default: read-ahead on)", (url, s) => deltasync(url, s, true)],
  ["deltasync runSync, batches of 250", orchestrated],
];

async function scenario(
  title: string,
  events: number,
  latency: number,
  importers: [string, (name: string) => Sink][],
): Promise<Map<string, Map<string, number>>> {
  const { url, stop } = await startEmulator(events, latency);
  const result = new Map<string, Map<string, number>>();
  try {
    // Warm up every client (JIT, sockets) on the same server.
    for (const [, run] of VARIANTS) await run(url, noopSink());
    console.log(
      `\n### ${title}: ${events} events, ${PAGE} per page${latency ? `, +${latency} ms per response` : ""}; median of ${ROUNDS}\n`,
    );
    for (const [importerName, makeSink] of importers) {
      const times = new Map<string, number[]>();
      for (let round = 0; round < ROUNDS; round++) {
        // Rotate the order each round so no client always runs right after another's disk writes.
        const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length] as Variant);
        for (const [name, run] of order) {
          const sink = makeSink(name.replace(/\W+/g, "-"));
          global.gc?.();
          const t0 = performance.now();
          await run(url, sink);
          const ms = performance.now() - t0;
          if (sink.count() !== events)
            throw new Error(`${name}: imported ${sink.count()} of ${events}`);
          sink.close();
          times.set(name, [...(times.get(name) ?? []), ms]);
        }
      }
      result.set(importerName, new Map([...times].map(([k, v]) => [k, median(v)])));
      const baseline = median(times.get("hand-written undici loop") as number[]);
      console.log(`${importerName}:\n`);
      console.log("| client | time (ms) | events/s | vs hand-written loop |");
      console.log("| --- | ---: | ---: | ---: |");
      for (const [name] of VARIANTS) {
        const ms = median(times.get(name) as number[]);
        console.log(
          `| ${name} | ${ms.toFixed(0)} | ${Math.round((events / ms) * 1000).toLocaleString("en-US")} | ${(baseline / ms).toFixed(2)}× |`,
        );
      }
      console.log("");
    }
  } finally {
    stop();
  }
  return result;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "deltasync-google-bench-"));
  const noop: [string, (name: string) => Sink] = ["no-op importer", () => noopSink()];
  const sqlite: [string, (name: string) => Sink] = [
    "SQLite upsert per event (better-sqlite3, WAL, autocommit)",
    (name) => sqliteSink(dir, name),
  ];
  try {
    const local = await scenario("localhost, no added latency", EVENTS, 0, [noop, sqlite]);
    const hand = (name: string) => local.get(name)?.get("hand-written undici loop") ?? 0;
    const importMs = (hand(sqlite[0]) - hand(noop[0])) / (EVENTS / PAGE);
    console.log(
      `SQLite import time per ${PAGE}-event page ≈ ${importMs.toFixed(1)} ms (hand-written loop, SQLite − no-op).`,
    );
    for (const latency of LATENCIES) {
      await scenario("with a network round trip", LATENCY_EVENTS, latency, [sqlite]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
