/**
 * Runs the Aurinko emulator in its own process (as the real service is), for benchmarks and
 * manual CLI runs: `node --import tsx test/aurinko/emulator-main.ts --contacts 20000`.
 * Prints `READY <baseUrl>` on stdout once listening; the account's token is `bench`.
 */
import { AurinkoEmulator } from "./emulator.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const emulator = await AurinkoEmulator.start({ pageSize: arg("page", 250) });
  const model = emulator.account("bench");
  for (let i = 0; i < arg("contacts", 1000); i++) {
    model.insert("contacts", { name: { displayName: `person ${i}` } });
  }
  process.stdout.write(`READY ${emulator.url}\n`);
  const stop = () => void emulator.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

void main();
