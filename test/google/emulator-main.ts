/**
 * Runs the Google emulator in its own process (as a real server would be), for benchmarks and
 * manual CLI runs: `node --import tsx test/google/emulator-main.ts --events 100000 --latency 0`.
 * `--calendars N --calendar-events E` adds calendars `cal0` … `cal<N-1>` with E events each
 * (one per account in the scale benchmark).
 * Prints `READY <url>` on stdout once listening.
 */
import { GoogleEmulator } from "./emulator.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const emulator = await GoogleEmulator.start({ latencyMs: arg("latency", 0) }, arg("port", 0));
  emulator.model.addCalendar("primary");
  const events = arg("events", 1000);
  for (let i = 0; i < events; i++) {
    emulator.model.insertEvent("primary", {
      summary: `Bench event ${i} with a realistic title`,
      day: i % 365,
    });
  }
  const perCalendar = arg("calendar-events", 5);
  for (let c = 0; c < arg("calendars", 0); c++) {
    emulator.model.addCalendar(`cal${c}`);
    for (let i = 0; i < perCalendar; i++) {
      emulator.model.insertEvent(`cal${c}`, {
        summary: `Event ${i} of calendar ${c}`,
        day: i % 365,
      });
    }
  }
  for (let i = 0; i < arg("people", 0); i++) emulator.model.addPerson(`person${i}`);
  for (let i = 0; i < arg("messages", 0); i++) emulator.model.receiveMessage(`message ${i}`);
  process.stdout.write(`READY ${emulator.url}\n`);
  const stop = () => void emulator.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

void main();
