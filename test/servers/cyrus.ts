/**
 * Throwaway Cyrus IMAP 3.6 (+ CalDAV / CardDAV / JMAP over HTTP) on free loopback ports.
 *
 * `cyrus-imapd` conflicts with `dovecot-imapd` in apt, so `.ci/install-cyrus.sh` unpacks its
 * binaries into `CYRUS_IMAPD_ROOT` (default /opt/deltasync-cyrus-imapd); everything else comes
 * from cyrus-common / cyrus-caldav / sasl2-bin.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { join } from "node:path";
import { freePort, hasCommand, startProcess, tempDir, waitForPort } from "./process.js";

const IMAPD_ROOT = process.env.CYRUS_IMAPD_ROOT ?? "/opt/deltasync-cyrus-imapd";
const CYRUS_BIN = "/usr/lib/cyrus/bin";
export const CYRUS_IMAPD = join(IMAPD_ROOT, "usr/lib/cyrus/bin/imapd");
export const CYRUS_MASTER = join(CYRUS_BIN, "master");
const CYRUS_HTTPD = join(CYRUS_BIN, "httpd");

export interface CyrusServer {
  imapPort: number;
  httpPort: number;
  user: string;
  password: string;
  dir: string;
  /** Adds a user with password `secret` (INBOX is created on its first login). */
  addUser(user: string): void;
  stop(): Promise<void>;
}

/** The commands the Cyrus fixture needs (for `serverAvailability`). */
export const CYRUS_COMMANDS = [CYRUS_MASTER, CYRUS_IMAPD, CYRUS_HTTPD, "saslpasswd2"];

export function cyrusInstalled(): boolean {
  return CYRUS_COMMANDS.every((c) => (c.startsWith("/") ? existsSync(c) : hasCommand(c)));
}

function chownCyrus(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const r = spawnSync("chown", ["-R", "cyrus:mail", dir]);
  if (r.status !== 0) throw new Error(`chown cyrus failed: ${r.stderr.toString()}`);
}

/** Options of `startCyrus`. */
export interface CyrusOptions {
  /**
   * `immediate` (default) expunges and deletes at once, as the IMAP tests expect. `delayed` is
   * Cyrus's own default, which DAV needs: every immediate expunge raises the mailbox's
   * `deletedmodseq`, and DAV refuses any sync token older than it (403 valid-sync-token).
   */
  expunge?: "immediate" | "delayed";
}

/** Starts Cyrus with user `alice` / `secret`; resolves once IMAP and HTTP accept connections. */
export async function startCyrus(options: CyrusOptions = {}): Promise<CyrusServer> {
  const expunge = options.expunge ?? "immediate";
  // Cyrus fsyncs every mailbox operation; on tmpfs (where there is one) tests run ~2x faster.
  const dir = existsSync("/dev/shm")
    ? mkdtempSync(join("/dev/shm", "deltasync-cyrus-"))
    : tempDir("cyrus");
  chmodSync(dir, 0o755);
  const imapPort = await freePort();
  let httpPort = await freePort();
  while (httpPort === imapPort) httpPort = await freePort();
  const user = "alice";
  const password = "secret";
  const conf = join(dir, "imapd.conf");
  for (const d of ["config", "config/socket", "config/proc", "config/log", "config/db", "spool"])
    mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(
    conf,
    [
      `configdirectory: ${dir}/config`,
      `partition-default: ${dir}/spool`,
      "servername: localhost",
      "admins: cyrus",
      "sasl_pwcheck_method: auxprop",
      "sasl_auxprop_plugin: sasldb",
      "sasl_mech_list: PLAIN LOGIN",
      `sasl_sasldb_path: ${dir}/sasldb2`,
      "allowplaintext: yes",
      "httpmodules: caldav carddav jmap",
      "httpallowcompress: no",
      "conversations: yes",
      "autocreate_post: yes",
      "autocreate_quota: 0",
      "unixhierarchysep: yes",
      "altnamespace: yes",
      `delete_mode: ${expunge}`,
      `expunge_mode: ${expunge}`,
      "jmap_nonstandard_extensions: yes",
      "caldav_allowscheduling: off",
      `lmtpsocket: ${dir}/config/socket/lmtp`,
      `idlesocket: ${dir}/config/socket/idle`,
      `notifysocket: ${dir}/config/socket/notify`,
      "syslog_prefix: deltasync-cyrus",
      "imapidlepoll: 1",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(dir, "cyrus.conf"),
    [
      "START {",
      `  recover cmd="${CYRUS_BIN}/ctl_cyrusdb -C ${conf} -r"`,
      "}",
      "SERVICES {",
      `  imap cmd="${CYRUS_IMAPD} -C ${conf} -U 30" listen="127.0.0.1:${imapPort}" prefork=0 maxchild=100`,
      `  http cmd="${CYRUS_HTTPD} -C ${conf} -U 30" listen="127.0.0.1:${httpPort}" prefork=0 maxchild=50`,
      `  lmtpunix cmd="${CYRUS_BIN}/lmtpd -C ${conf}" listen="${dir}/config/socket/lmtp" prefork=0 maxchild=5`,
      "}",
      "EVENTS {",
      `  checkpoint cmd="${CYRUS_BIN}/ctl_cyrusdb -C ${conf} -c" period=30`,
      "}",
      "",
    ].join("\n"),
  );
  const addUser = (name: string) => {
    const sasl = spawnSync(
      "saslpasswd2",
      ["-p", "-c", "-f", join(dir, "sasldb2"), "-u", "localhost", name],
      { input: password },
    );
    if (sasl.status !== 0) throw new Error(`saslpasswd2 failed: ${sasl.stderr.toString()}`);
    chownCyrus(join(dir, "sasldb2"));
  };
  addUser(user);
  chownCyrus(dir);
  const server = startProcess(
    CYRUS_MASTER,
    ["-C", conf, "-M", join(dir, "cyrus.conf"), "-p", join(dir, "master.pid"), "-D"],
    dir,
  );
  try {
    await waitForPort(imapPort, 15_000, server.child);
    await waitForPort(httpPort, 15_000, server.child);
  } catch (err) {
    await server.stop();
    throw new Error(`cyrus did not start: ${(err as Error).message}\n${server.output()}`);
  }
  return { imapPort, httpPort, user, password, dir, addUser, stop: () => server.stop(10_000) };
}

/** Cyrus creates a user's mailboxes (and DAV homes) on the first IMAP login. */
export async function imapLogin(port: number, user: string, password: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = new Socket();
    let buf = "";
    s.setTimeout(10_000, () => s.destroy(new Error("imap login timed out")));
    s.on("error", reject);
    s.on("data", (d) => {
      buf += d.toString();
      if (buf.startsWith("* OK") && !buf.includes("a1 ")) {
        if (!buf.includes("\r\n") || buf.includes("sent")) return;
        buf += "sent";
        s.write(`a1 LOGIN ${user} ${password}\r\n`);
      } else if (/a1 OK/.test(buf)) {
        s.end("a2 LOGOUT\r\n");
        resolve();
      } else if (/a1 (NO|BAD)/.test(buf)) reject(new Error(`imap login failed: ${buf}`));
    });
    s.connect(port, "127.0.0.1");
  });
}
