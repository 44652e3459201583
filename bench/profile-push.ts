/**
 * CPU profile of `push` alone (the outbox filled beforehand, outside the profile): the bench's
 * workload, 1,000 conditional updates to the Google emulator without latency, so the pusher's
 * own cost is most of the time. Usage (bundle first so the profile has real line numbers):
 *   npx esbuild bench/profile-push.ts --bundle --platform=node --format=esm \
 *     --packages=external --outfile=node_modules/.cache/profile-push.mjs
 *   node node_modules/.cache/profile-push.mjs memory|sqlite /tmp/push.cpuprofile
 *   npx tsx bench/profile-summary.ts /tmp/push.cpuprofile 30
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGoogleAccount } from "../adapters/google/index.js";
import { createMemoryStateStore } from "../src/stores/memory.js";
import { createSqliteStateStore } from "../src/stores/sqlite.js";
import { createOutbox } from "../src/two-way/outbox.js";
import { push } from "../src/two-way/push.js";
import { GoogleEmulator } from "../test/google/emulator.js";
import { dayTime } from "../test/google/emulator-model.js";

const [mode = "sqlite", out = "/tmp/push.cpuprofile"] = process.argv.slice(2);
const EDITS = Number(process.env.TWO_WAY_BENCH_EDITS ?? 1000);
const dir = mkdtempSync(join(tmpdir(), "deltasync-profile-push-"));
const emulator = await GoogleEmulator.start({ latencyMs: 0 });
emulator.model.addCalendar("primary");
for (let i = 0; i < EDITS; i++) emulator.model.insertEvent("primary", { summary: "x", day: 1 });
const account = createGoogleAccount({ baseUrl: emulator.url, accessToken: "t" });
const target = account.calendarWriteTarget("primary");
const journal = emulator.model.calendars.get("primary");
const data = { summary: "r1", start: dayTime(1), end: dayTime(1, 1) };
const store =
  mode === "sqlite" ? createSqliteStateStore(join(dir, "o.sqlite")) : createMemoryStateStore();
const outbox = createOutbox(store);
for (const k of journal?.keys() ?? []) {
  const changeKey = journal?.get(k)?.etag as string;
  await outbox.record("p", { kind: "update", localId: k, sourcekey: k, changeKey, data });
}
const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.start");
const start = performance.now();
const result = await push(target, outbox, { pair: "p" });
const ms = performance.now() - start;
const { profile } = await session.post("Profiler.stop");
writeFileSync(out, JSON.stringify(profile));
console.log(`${mode}: pushed ${result.pushed} in ${ms.toFixed(0)} ms`);
await account.close();
await emulator.close();
await outbox.close();
rmSync(dir, { recursive: true, force: true });
