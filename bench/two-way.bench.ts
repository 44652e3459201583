/**
 * two-way: push 1,000 local edits (conditional updates) to Radicale and to the Google emulator
 * with `push` (outbox in SQLite, the embedded default, and in memory) vs a hand-written
 * sequential loop of the same conditional writes through the same write target, same run.
 * The ratio is the pusher's bookkeeping cost (goal: ≥ 0.9× the loop's throughput).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { davWriteTarget } from "../adapters/dav/dav-push.js";
import { createDavAccount } from "../adapters/dav/index.js";
import { createGoogleAccount } from "../adapters/google/index.js";
import { createMemoryStateStore } from "../src/stores/memory.js";
import { createSqliteStateStore } from "../src/stores/sqlite.js";
import type { StateStore } from "../src/stores/types.js";
import { createOutbox } from "../src/two-way/outbox.js";
import { push } from "../src/two-way/push.js";
import type { OutboxEntry, WriteTarget } from "../src/two-way/types.js";
import { GoogleEmulator } from "../test/google/emulator.js";
import { dayTime } from "../test/google/emulator-model.js";
import { startRadicale } from "../test/servers/radicale.js";

const EDITS = Number(process.env.TWO_WAY_BENCH_EDITS ?? 1000);
const dir = mkdtempSync(join(tmpdir(), "deltasync-two-way-bench-"));

interface Backend {
  name: string;
  target: WriteTarget;
  /** The current objects: sourcekey → changeKey. */
  versions(): Promise<Map<string, string>>;
  data(key: string, round: number): unknown;
  close(): Promise<void>;
}

async function loop(b: Backend, round: number): Promise<number> {
  const versions = await b.versions();
  const ctx = { signal: new AbortController().signal };
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
    await b.target.update(entry, ctx);
  }
  return performance.now() - start;
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
  // Warm-up, then alternate so neither side always runs on a warmer server.
  await loop(b, ++round);
  const runs: Record<string, number[]> = { loop: [], memory: [], sqlite: [] };
  for (let r = 0; r < 3; r++) {
    runs.loop?.push(await loop(b, ++round));
    runs.memory?.push(await pusher(b, ++round, createMemoryStateStore()));
    runs.sqlite?.push(
      await pusher(b, ++round, createSqliteStateStore(join(dir, `o${round}.sqlite`))),
    );
  }
  const best = (xs: number[]) => Math.min(...xs);
  const base = best(runs.loop as number[]);
  for (const [name, xs] of Object.entries(runs)) {
    const ms = best(xs);
    rows.push(
      `| ${name === "loop" ? "hand-written loop" : `push, outbox in ${name}`} | ${ms.toFixed(0)} ms | ${((EDITS / ms) * 1000).toFixed(0)}/s | ${(base / ms).toFixed(2)}× |`,
    );
  }
  console.log(`\n${b.name}: ${EDITS} conditional updates, best of 3\n`);
  console.log("| | time | throughput | vs loop |\n| --- | --- | --- | --- |");
  console.log(rows.join("\n"));
  await b.close();
}
rmSync(dir, { recursive: true, force: true });
