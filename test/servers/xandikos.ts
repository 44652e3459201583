/**
 * A throwaway Xandikos (git-backed CalDAV + CardDAV) on a free loopback port. No authentication:
 * Basic credentials are ignored. `--defaults` creates `/user/calendars/calendar/` and
 * `/user/contacts/addressbook/` (recipe: shared SERVERS.md).
 */
import { freePort, shmTempDir, startProcess, waitForHttp } from "./process.js";

export interface XandikosServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export async function startXandikos(): Promise<XandikosServer> {
  const dir = shmTempDir("xandikos");
  const port = await freePort();
  const server = startProcess(
    "xandikos",
    ["-d", `${dir}/data`, "--defaults", "-l", "127.0.0.1", "-p", String(port)],
    dir,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(server, url, "xandikos");
  return { url, port, dir, stop: () => server.stop() };
}
