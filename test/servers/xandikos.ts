/**
 * A throwaway Xandikos (git-backed CalDAV + CardDAV) on a free loopback port. No authentication:
 * Basic credentials are ignored. `--defaults` creates `/user/calendars/calendar/` and
 * `/user/contacts/addressbook/` (recipe: shared SERVERS.md).
 */
import { freePort, type RunningServer, startProcess, tempDir } from "./process.js";

export interface XandikosServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export async function startXandikos(): Promise<XandikosServer> {
  const dir = tempDir("xandikos");
  const port = await freePort();
  const server = startProcess(
    "xandikos",
    ["-d", `${dir}/data`, "--defaults", "-l", "127.0.0.1", "-p", String(port)],
    dir,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(server, url);
  return { url, port, dir, stop: () => server.stop() };
}

async function waitReady(server: RunningServer, url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (server.child.exitCode !== null) {
      const output = server.output();
      await server.stop(); // removes the throwaway dir
      throw new Error(`xandikos exited (${server.child.exitCode}): ${output}`);
    }
    try {
      const res = await fetch(`${url}/`, { redirect: "manual" });
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`xandikos did not answer on ${url}: ${server.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
