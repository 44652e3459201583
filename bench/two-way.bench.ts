/**
 * two-way: push 1,000 local edits (conditional updates) to Radicale and to the Google emulator
 * with `push` (outbox in SQLite, the embedded default, and in memory) vs a hand-written
 * sequential loop of the same conditional writes through the same write target, same run.
 * The baseline loop is a careful one: after each write it records its progress (the entry's
 * number and the new version) in SQLite, one commit per entry, as durable as the pusher's own
 * completion commit (WAL, `synchronous = NORMAL`); without that record a crash would leave it
 * not knowing what it wrote. The bare loop (no record) is shown too, as the floor.
 * The ratio is the pusher's bookkeeping cost (goal: ≥ 0.9× the careful loop's throughput).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { davWriteTarget } from "../adapters/dav/dav-push.js";
import { createDavAccount } from "../adapters/dav/index.js";
import { createGoogleAccount } from "../adapters/google/index.js";
import { createMemoryStateStore } from "../src/stores/memory.js";
import { createSqliteStateStore } from "../src/stores/sqlite.js";
import { openSqlite } from "../src/stores/sqlite-driver.js";
import type { StateStore } from "../src/stores/types.js";
import { createOutbox } from "../src/two-way/outbox.js";
import { push } from "../src/two-way/push.js";
import type { OutboxEntry, WriteTarget } from "../src/two-way/types.js";
import { GoogleEmulator } from "../test/google/emulator.js";
import { dayTime } from "../test/google/emulator-model.js";
import { startRadicale } from "../test/servers/radicale.js";

const EDITS = Number(process.env.TWO_WAY_BENCH_EDITS ?? 1000);
const ROUNDS = Number(process.env.TWO_WAY_BENCH_ROUNDS ?? 3);
const dir = mkdtempSync(join(tmpdir(), "deltasync-two-way-bench-"));

interface Backend {
  name: string;
  target: WriteTarget;
  /** The current objects: sourcekey → changeKey. */
  versions(): Promise<Map<string, string>>;
  data(key: string, round: number): unknown;
  close(): Promise<void>;
}

/** The progress record of the careful loop: one row, one commit per entry. */
function progressLog(file: string) {
  const db = openSqlite(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE progress (pair TEXT PRIMARY KEY, seq INTEGER, key TEXT, version TEXT)");
  const save = db.prepare(
    `INSERT INTO progress (pair, seq, key, version) VALUES (?, ?, ?, ?)
      ON CONFLICT (pair) DO UPDATE SET seq = excluded.seq, key = excluded.key, version = excluded.version`,
  );
  return {
    record: (pair: string, seq: number, key: string, version: string | undefined) =>
      void save.run(pair, seq, key, version ?? null),
    close: () => db.close(),
  };
}

async function loop(b: Backend, round: number, careful: boolean): Promise<number> {
  const versions = await b.versions();
  const ctx = { signal: new AbortController().signal };
  const log = careful ? progressLog(join(dir, `loop${round}.sqlite`)) : undefined;
  const start = performance.now();
  let seq = 0;
  for (const [key, changeKey] of versions) {
    const entry: OutboxEntry = {
      kind: "update",
      seq: ++seq,
      at: 0,
      localId: key,
      sourcekey: key,
      changeKey,
      data: b.data(key, round),
    };
    const result = await b.target.update(entry, ctx);
    log?.record(`bench-${round}`, seq, result.sourcekey, result.changeKey);
  }
  const ms = performance.now() - start;
  log?.close();
  return ms;
}

async function pusher(b: Backend, round: number, store: StateStore): Promise<number> {
  const versions = await b.versions();
  const outbox = createOutbox(store);
  const pair = `bench-${round}`;
  for (const [key, changeKey] of versions) {
    await outbox.record(pair, {
      kind: "update",
      localId: key,
      sourcekey: key,
      changeKey,
      data: b.data(key, round),
    });
  }
  const start = performance.now();
  const result = await push(b.target, outbox, { pair });
  const ms = performance.now() - start;
  if (result.pushed !== versions.size) throw new Error(`pushed ${result.pushed}`);
  return ms;
}

function event(i: string, round: number): string {
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//deltasync//bench//EN",
    "BEGIN:VEVENT",
    `UID:${i}`,
    "DTSTAMP:20240101T000000Z",
    "DTSTART:20240102T100000Z",
    "DTEND:20240102T110000Z",
    `SUMMARY:Bench ${i} r${round}`,
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

async function radicale(): Promise<Backend> {
  const server = await startRadicale({ seed: [{ name: "bench", kind: "calendar" }] });
  const account = createDavAccount({ url: server.url, username: "alice", password: "secret" });
  const collection = "/alice/bench/";
  for (let i = 0; i < EDITS; i++) {
    await account.put({ href: `${collection}e${i}.ics`, raw: event(`e${i}`, 0) });
  }
  const scope = account.collection(collection);
  return {
    name: "Radicale",
    target: davWriteTarget(account, collection),
    async versions() {
      const out = new Map<string, string>();
      await scope.sync({ update: (o) => void out.set(o.sourcekey, o.changeKey as string) });
      return out;
    },
    data: (key, round) => ({ raw: event(key.replace(/^.*\/|\.ics$/g, ""), round) }),
    async close() {
      await account.close();
      await server.stop();
    },
  };
}

async function google(): Promise<Backend> {
  // TWO_WAY_BENCH_LATENCY_MS models a network round trip (the emulator answers in ~0.1 ms).
  const latencyMs = Number(process.env.TWO_WAY_BENCH_LATENCY_MS ?? 0);
  const emulator = await GoogleEmulator.start({ latencyMs });
  emulator.model.addCalendar("primary");
  for (let i = 0; i < EDITS; i++) emulator.model.insertEvent("primary", { summary: "x", day: 1 });
  const account = createGoogleAccount({ baseUrl: emulator.url, accessToken: "t" });
  return {
    name: `Google emulator (${latencyMs} ms latency)`,
    target: account.calendarWriteTarget("primary"),
    async versions() {
      const out = new Map<string, string>();
      const journal = emulator.model.calendars.get("primary");
      for (const k of journal?.keys() ?? []) out.set(k, journal?.get(k)?.etag as string);
      return out;
    },
    data: (_key, round) => ({ summary: `r${round}`, start: dayTime(1), end: dayTime(1, 1) }),
    async close() {
      await account.close();
      await emulator.close();
    },
  };
}

let round = 0;
const only = process.env.TWO_WAY_BENCH_ONLY;
for (const make of [radicale, google].filter((m) => !only || m.name === only)) {
  const b = await make();
  const rows: string[] = [];
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
  const loadBefore = load();
  // Warm-up, then alternate so neither side always runs on a warmer server.
  await loop(b, ++round, true);
  const runs: Record<string, number[]> = { careful: [], bare: [], memory: [], sqlite: [] };
  for (let r = 0; r < ROUNDS; r++) {
    runs.careful?.push(await loop(b, ++round, true));
    runs.bare?.push(await loop(b, ++round, false));
    runs.memory?.push(await pusher(b, ++round, createMemoryStateStore()));
    runs.sqlite?.push(
      await pusher(b, ++round, createSqliteStateStore(join(dir, `o${round}.sqlite`))),
    );
  }
  const best = (xs: number[]) => Math.min(...xs);
  // The load drifts between rounds: each round's ratio to the baseline of the same round, median.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const perRound = (xs: number[]) => median(xs.map((ms, i) => (runs.careful?.[i] ?? 0) / ms));
  const base = best(runs.careful as number[]);
  const names: Record<string, string> = {
    careful: "hand-written loop + progress record (baseline)",
    bare: "hand-written loop, no progress record",
    memory: "push, outbox in memory",
    sqlite: "push, outbox in SQLite",
  };
  for (const [name, xs] of Object.entries(runs)) {
    const ms = best(xs);
    rows.push(
      `| ${names[name]} | ${ms.toFixed(0)} ms | ${((EDITS / ms) * 1000).toFixed(0)}/s | ${(base / ms).toFixed(2)}× | ${perRound(xs).toFixed(2)}× |`,
    );
  }
  console.log(`\n${b.name}: ${EDITS} conditional updates, best of ${ROUNDS}\n`);
  console.log(`load average (1, 5, 15 min) before: ${loadBefore}, after: ${load()}`);
  console.log(
    "| | time | throughput | vs baseline (best) | vs baseline (median per round) |\n| --- | --- | --- | --- | --- |",
  );
  console.log(rows.join("\n"));
  await b.close();
}
rmSync(dir, { recursive: true, force: true });
