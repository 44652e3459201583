/**
 * A throwaway Radicale (CalDAV + CardDAV) on a free loopback port, for the dav adapter tests.
 * Recipe: shared SERVERS.md. Seed large collections with `seed` before `start` (writes are slow).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, shmTempDir, startProcess, tempDir, waitForHttp } from "./process.js";

export interface RadicaleServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  user: string;
  password: string;
  /** The folder holding `collection-root/<user>/<collection>/`. */
  storage: string;
  dir: string;
  stop(): Promise<void>;
}

export interface RadicaleSeed {
  /** Collection name under the user's principal, e.g. `work`. */
  name: string;
  kind: "calendar" | "addressbook";
  displayname?: string;
  /** File name (e.g. `uid.ics`) → body, written straight into the storage folder. */
  files?: Record<string, string>;
}

/** Starts Radicale with htpasswd auth (user `alice`, password `secret`), optionally pre-seeded. */
export async function startRadicale(
  options: {
    seed?: RadicaleSeed[];
    user?: string;
    password?: string;
    /** `disk` (the benchmark): a temp dir on disk, as Radicale runs in production; default tmpfs. */
    storage?: "tmpfs" | "disk";
  } = {},
): Promise<RadicaleServer> {
  const user = options.user ?? "alice";
  const password = options.password ?? "secret";
  const disk = options.storage === "disk";
  const dir = disk ? tempDir("radicale") : shmTempDir("radicale");
  const port = await freePort();
  const storage = join(dir, "collections");
  writeFileSync(join(dir, "users"), `${user}:${password}\n`);
  writeFileSync(
    join(dir, "config"),
    [
      "[server]",
      `hosts = 127.0.0.1:${port}`,
      "[auth]",
      "type = htpasswd",
      `htpasswd_filename = ${join(dir, "users")}`,
      "htpasswd_encryption = plain",
      "delay = 0",
      "[storage]",
      `filesystem_folder = ${storage}`,
      "[rights]",
      "type = owner_only",
      "[web]",
      "type = none",
      "[logging]",
      "level = warning",
      "",
    ].join("\n"),
  );
  for (const seed of options.seed ?? []) seedCollection(storage, user, seed);
  const server = startProcess("radicale", ["--config", join(dir, "config")], dir);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(server, url, "radicale");
  return { url, port, user, password, storage, dir, stop: () => server.stop() };
}

/** Writes one collection (and its items) into Radicale's filesystem storage. */
export function seedCollection(storage: string, user: string, seed: RadicaleSeed): void {
  const folder = join(storage, "collection-root", user, seed.name);
  mkdirSync(folder, { recursive: true });
  const props: Record<string, string> = {
    tag: seed.kind === "calendar" ? "VCALENDAR" : "VADDRESSBOOK",
  };
  if (seed.displayname) props["D:displayname"] = seed.displayname;
  writeFileSync(join(folder, ".Radicale.props"), JSON.stringify(props));
  for (const [name, body] of Object.entries(seed.files ?? {})) {
    writeFileSync(join(folder, name), body);
  }
}
