/**
 * SIGKILL a pushing process at every step of a push (before the write, after the server
 * accepted it, in the write-back before the outbox commit): the next push resumes at exactly
 * that entry, and the server ends with every create once.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGoogleAccount } from "../../adapters/google/index.js";
import { createSqliteStateStore } from "../../src/stores/sqlite.js";
import { createOutbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";
import { GoogleEmulator } from "../google/emulator.js";
import { dayTime } from "../google/emulator-model.js";

const N = 6;
const dir = mkdtempSync(join(tmpdir(), "deltasync-push-kill-"));
let emulator: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("push under SIGKILL", () => {
  it.each(
    Array.from({ length: N }, (_, i) =>
      ["beforeWrite", "afterWrite", "inWriteBack"].map((phase) => [i + 1, phase] as const),
    ).flat(),
  )("killed at write %i (%s): resuming pushes every create exactly once", async (killAt, phase) => {
    emulator.reset();
    emulator.model.addCalendar("primary");
    const file = join(dir, `kill-${killAt}-${phase}.sqlite`);
    const account = createGoogleAccount({ baseUrl: emulator.url, accessToken: "t" });
    const target = account.calendarWriteTarget("primary");
    const outbox = createOutbox(createSqliteStateStore(file));
    for (let i = 1; i <= N; i++) {
      await outbox.record("p", {
        kind: "create",
        localId: `row${i}`,
        sourcekey: target.keyFor(`row${i}`),
        data: { summary: `e${i}`, start: dayTime(i), end: dayTime(i, 1) },
      });
    }
    // Asynchronous: the emulator lives in this process and must keep answering the child.
    const child = await new Promise<{ signal: NodeJS.Signals | null; stderr: string }>(
      (resolve) => {
        const p = spawn(process.execPath, ["--import", "tsx", "test/two-way/kill-child.ts", file], {
          env: {
            ...process.env,
            KILL_AT: String(killAt),
            KILL_PHASE: phase,
            EMULATOR_URL: emulator.url,
          },
        });
        let stderr = "";
        p.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
        });
        p.on("exit", (_code, signal) => resolve({ signal, stderr }));
      },
    );
    expect(child.signal, child.stderr).toBe("SIGKILL");
    const inserted = () =>
      emulator.requests.filter((r) => r.method === "POST" && /\/events$/.test(r.path)).length;
    const written = phase === "beforeWrite" ? killAt - 1 : killAt;
    expect(inserted()).toBe(written);
    const result = await push(target, outbox, { pair: "p" });
    expect(result).toMatchObject({
      status: "done",
      pushed: N - written + (phase === "beforeWrite" ? 0 : 1),
    });
    const events = [...(emulator.model.calendars.get("primary")?.keys() ?? [])];
    expect(events.sort()).toEqual(
      Array.from({ length: N }, (_, i) => target.keyFor(`row${i + 1}`)).sort(),
    );
    expect(await outbox.pending("p")).toEqual([]);
    expect(await outbox.lastPushed("p")).toBe(N);
    expect(await outbox.conflicts("p", { all: true })).toEqual([]);
    await outbox.close();
    await account.close();
  });
});
