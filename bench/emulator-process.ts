/**
 * Emulators and workers in their own processes, as real servers and fleets are: the process
 * prints `<MARKER> <value>` on stdout once ready (the test/…/emulator-main.ts scripts print
 * `READY <baseUrl>`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The value after `marker` on a line of the child's stdout; rejects if it exits first. */
export function lineFrom(child: ChildProcess, marker: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = new RegExp(`^${marker} (.*)$`, "m").exec(out);
      if (m) {
        child.stdout?.off("data", onData);
        child.off("exit", onExit);
        resolve((m[1] as string).trim());
      }
    };
    const onExit = (code: number | null) => reject(new Error(`process exited with ${code}`));
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}

/** Runs a TypeScript script of the repository (`test/google/emulator-main.ts`) under tsx. */
export function spawnScript(script: string, args: string[], nodeArgs: string[] = []): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", ...nodeArgs, join(root, script), ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
}

/** An emulator script in its own process; resolves with its base URL once it listens. */
export async function startEmulatorProcess(
  script: string,
  args: string[],
): Promise<{ url: string; child: ChildProcess; stop(): void }> {
  const child = spawnScript(script, args);
  const url = await lineFrom(child, "READY");
  return { url, child, stop: () => child.kill("SIGTERM") };
}
