/**
 * Throwaway Dovecot 2.3 (IMAP4rev1 + CONDSTORE, QRESYNC, IDLE, NOTIFY) on a free loopback port.
 * Every user name logs in with the password `secret` (a static passdb), so tests can use a fresh
 * user (a fresh, empty mail store) per history.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startProcess, tempDir, waitForPort } from "./process.js";

export const DOVECOT_COMMANDS = ["dovecot", "doveadm"];

export interface DovecotServer {
  port: number;
  /** The implicit-TLS port when started with `tls: true`. */
  tlsPort?: number;
  user: string;
  password: string;
  dir: string;
  /** The maildir of `user` (`DIR/mail/USER/Maildir`), for seeding before first login. */
  maildir(user?: string): string;
  /** Makes `user` able to log in (a no-op: every name logs in with `secret`). */
  addUser(user: string): void;
  /** Drops every IMAP connection of `user` (doveadm kick), for dropped-connection tests. */
  kick(user: string): void;
  stop(): Promise<void>;
}

export interface DovecotSetup {
  /** Also listen for implicit TLS (`tlsPort`) and offer STARTTLS, with a fresh self-signed cert. */
  tls?: boolean;
  /** Runs after the config is written and before Dovecot starts (e.g. to seed a maildir). */
  beforeStart?(server: { dir: string; maildir(user?: string): string }): void;
}

function chownDovecot(path: string): void {
  if (process.getuid?.() !== 0) return;
  spawnSync("chown", ["-R", "dovecot:dovecot", path]);
}

/** Starts Dovecot with user `alice` / `secret`. */
export async function startDovecot(setup: DovecotSetup = {}): Promise<DovecotServer> {
  const dir = tempDir("dovecot");
  chmodSync(dir, 0o755);
  const port = await freePort();
  const tlsPort = setup.tls ? await freePort() : undefined;
  let ssl = "ssl = no";
  if (setup.tls) {
    const made = spawnSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ]);
    if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`);
    ssl = `ssl = yes\nssl_cert = <${dir}/cert.pem\nssl_key = <${dir}/key.pem`;
  }
  const user = "alice";
  const password = "secret";
  for (const d of ["run", "state", "mail"]) mkdirSync(join(dir, d), { recursive: true });
  const conf = join(dir, "dovecot.conf");
  writeFileSync(
    conf,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = test-dovecot-${port}
log_path = ${dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
${ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:${dir}/mail/%u/Maildir
first_valid_uid = 100
passdb {
  driver = static
  args = password=${password}
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=${dir}/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${tlsPort ?? 0}
  }
}
service doveadm {
  unix_listener doveadm-server {
    mode = 0666
  }
}
protocol imap {
  mail_max_userip_connections = 200
}
`,
  );
  const maildir = (u = user) => join(dir, "mail", u, "Maildir");
  setup.beforeStart?.({ dir, maildir });
  chownDovecot(join(dir, "mail"));
  const server = startProcess("dovecot", ["-F", "-c", conf], dir);
  try {
    await waitForPort(port, 15_000, server.child);
  } catch (err) {
    await server.stop();
    throw new Error(`dovecot did not start: ${(err as Error).message}\n${server.output()}`);
  }
  if (tlsPort) await waitForPort(tlsPort, 15_000, server.child);
  return {
    port,
    ...(tlsPort ? { tlsPort } : {}),
    user,
    password,
    dir,
    maildir,
    addUser() {
      // Any user name is accepted with the shared password.
    },
    kick(name) {
      spawnSync("doveadm", ["-c", conf, "kick", name]);
    },
    // Dovecot takes 1-3 s to exit; startProcess waits for the pid before removing the dir.
    stop: () => server.stop(10_000),
  };
}
