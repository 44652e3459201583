/**
 * Child process for the push kill test: pushes the outbox in a SQLite file to the Google
 * emulator at EMULATOR_URL and SIGKILLs itself at write KILL_AT, in phase KILL_PHASE
 * (beforeWrite | afterWrite | inWriteBack).
 */
import { createGoogleAccount } from "../../adapters/google/index.js";
import { createSqliteStateStore } from "../../src/stores/sqlite.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";
import type { WriteTarget } from "../../src/two-way/types.js";

const [file] = process.argv.slice(2);
const killAt = Number(process.env.KILL_AT);
const phase = process.env.KILL_PHASE;
const die = () => process.kill(process.pid, "SIGKILL");
const account = createGoogleAccount({ baseUrl: process.env.EMULATOR_URL, accessToken: "t" });
const inner = account.calendarWriteTarget("primary");
let n = 0;
const target: WriteTarget = {
  ...inner,
  async create(e, ctx) {
    if (++n === killAt && phase === "beforeWrite") die();
    const r = await inner.create(e, ctx);
    if (n === killAt && phase === "afterWrite") die();
    return r;
  },
};
let pushed = 0;
await push(target, createOutbox(createSqliteStateStore(file as string)), {
  pair: "p",
  onPushed() {
    if (++pushed === killAt && phase === "inWriteBack") die();
  },
});
console.log("completed");
await account.close();
