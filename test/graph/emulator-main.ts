/**
 * Runs the Graph emulator in its own process (as a real server would be), for benchmarks and
 * manual CLI runs: `node --import tsx test/graph/emulator-main.ts --messages 100000`.
 * Prints `READY <baseUrl>` on stdout once listening.
 */
import { GraphEmulator } from "./emulator.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const emulator = await GraphEmulator.start(
    { latencyMs: arg("latency", 0), maxPageSize: arg("max-page", 1000) },
    arg("port", 0),
  );
  for (let i = 0; i < arg("messages", 1000); i++)
    emulator.model.receive("inbox", `Bench message ${i} with a realistic subject line`);
  process.stdout.write(`READY ${emulator.baseUrl}\n`);
  const stop = () => void emulator.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

void main();
