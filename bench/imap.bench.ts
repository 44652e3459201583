/**
 * IMAP adapter against a real Dovecot holding a 50,000-message mailbox (seeded as maildir files
 * before Dovecot starts). Measures, through a byte-counting loopback proxy:
 * - a full sync (envelope + flags + size) against a raw imapflow fetch loop of the same fields;
 * - an incremental sync after 10 flag changes + 10 expunges (QRESYNC, CONDSTORE-only, plain),
 *   which must cost O(changes) in bytes and round trips with QRESYNC, not O(mailbox).
 * Run: `npm run bench -- imap` (MESSAGES=5000 for a quick run).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImapFlow } from "imapflow";
import { createImapAccount, type ImapSyncMode } from "../adapters/imap/index.js";
import { startDovecot } from "../test/servers/dovecot.js";
import { hasCommand } from "../test/servers/process.js";
import { startTcpProxy } from "../test/servers/tcp-proxy.js";

const MESSAGES = Number(process.env.MESSAGES ?? 50_000);

interface Meter {
  port: number;
  reset(): void;
  read(): { down: number; up: number; writes: number };
  close(): void;
}

/** Counts bytes each way and client writes (≈ commands, i.e. round trips) through a proxy. */
async function meter(target: number): Promise<Meter> {
  let down = 0;
  let up = 0;
  let writes = 0;
  const proxy = await startTcpProxy(target, () => ({
    up(b) {
      up += b.length;
      writes++;
      return b;
    },
    down(b) {
      down += b.length;
      return b;
    },
  }));
  return {
    port: proxy.port,
    reset() {
      down = 0;
      up = 0;
      writes = 0;
    },
    read: () => ({ down, up, writes }),
    close: () => void proxy.close(),
  };
}

function seedMaildir(maildir: string, count: number): void {
  for (const d of ["cur", "new", "tmp"]) mkdirSync(join(maildir, d), { recursive: true });
  const base = Math.floor(Date.now() / 1000) - count;
  for (let i = 0; i < count; i++) {
    const body = [
      `Message-ID: <bench${i}@deltasync.test>`,
      `Date: ${new Date((base + i) * 1000).toUTCString()}`,
      `From: Sender ${i % 97} <sender${i % 97}@example.com>`,
      "To: Alice <alice@example.com>",
      `Subject: Benchmark message ${i}`,
      "",
      `Body of message ${i}.`,
      "",
    ].join("\r\n");
    const flags = i % 3 === 0 ? "S" : i % 7 === 0 ? "FS" : "";
    writeFileSync(
      join(maildir, "cur", `${base + i}.M${i}P1.bench,S=${body.length}:2,${flags}`),
      body,
    );
  }
}

const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`;
const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

async function main(): Promise<void> {
  if (!hasCommand("dovecot")) {
    console.log("dovecot not installed (run .ci/install-imap.sh): skipped");
    return;
  }
  let t = performance.now();
  const dovecot = await startDovecot({ beforeStart: (s) => seedMaildir(s.maildir(), MESSAGES) });
  const seedTime = ms(t);
  const m = await meter(dovecot.port);
  const options = {
    host: "127.0.0.1",
    port: m.port,
    user: dovecot.user,
    password: dovecot.password,
  };
  const rows: string[][] = [];
  try {
    // Dovecot builds its index on first access; keep that out of every measurement.
    const client = new ImapFlow({
      ...options,
      secure: false,
      auth: { user: options.user, pass: options.password },
      logger: false,
    });
    await client.connect();
    t = performance.now();
    await client.mailboxOpen("INBOX");
    const indexTime = ms(t);

    // Baseline: raw imapflow, one FETCH 1:* of the same fields.
    m.reset();
    t = performance.now();
    let raw = 0;
    for await (const msg of client.fetch("1:*", {
      uid: true,
      flags: true,
      size: true,
      internalDate: true,
      envelope: true,
    })) {
      if (msg.uid) raw++;
    }
    const rawMs = performance.now() - t;
    const rawBytes = m.read();
    rows.push([
      "raw imapflow FETCH 1:* (baseline)",
      String(raw),
      `${rawMs.toFixed(0)} ms`,
      kb(rawBytes.down),
      String(rawBytes.writes),
      "1.00×",
    ]);

    const fullRow = async (label: string, chunkSize: number | undefined, keep = false) => {
      const account = createImapAccount({ ...options, ...(chunkSize ? { chunkSize } : {}) });
      m.reset();
      t = performance.now();
      const out = await account.folder("INBOX").exportChanges({ update: () => undefined });
      const took = performance.now() - t;
      const used = m.read();
      rows.push([
        label,
        String(out.counts.update),
        `${took.toFixed(0)} ms`,
        kb(used.down),
        String(used.writes),
        `${(took / rawMs).toFixed(2)}× (${(rawMs / took).toFixed(2)}× throughput)`,
      ]);
      if (!keep) await account.close();
      return { account, state: out.state };
    };
    await fullRow("deltasync full sync (QRESYNC, 5,000/page)", 5000);
    await fullRow("deltasync full sync (QRESYNC, 1,000/page)", 1000);
    // Kept open: the incremental round below runs on this long-lived connection.
    const live = await fullRow("deltasync full sync (QRESYNC, default 500/page)", undefined, true);
    const states: Partial<Record<ImapSyncMode, string>> = { auto: live.state };
    for (const mode of ["condstore", "plain"] as const) {
      const account = createImapAccount({ ...options, mode, chunkSize: 1000 });
      const out = await account.folder("INBOX").exportChanges({ update: () => undefined });
      states[mode] = out.state;
      await account.close();
    }
    for (const mode of ["auto", "condstore", "plain"] as const) {
      console.log(`state after full sync (${mode}): ${kb((states[mode] ?? "").length)}`);
    }

    // A second raw session with INBOX selected (QRESYNC), for the raw incremental baseline.
    const raw2 = new ImapFlow({
      ...options,
      secure: false,
      auth: { user: options.user, pass: options.password },
      logger: false,
      qresync: true,
    });
    await raw2.connect();
    const before = await raw2.mailboxOpen("INBOX");

    // 10 flag changes + 10 expunges through the first client.
    const lock = await client.getMailboxLock("INBOX");
    try {
      for (let i = 0; i < 10; i++)
        await client.messageFlagsAdd({ uid: `${100 + i * 997}` }, ["\\Flagged"]);
      await client.messageFlagsAdd({ uid: "200" }, ["\\Seen"]);
      await client.messageDelete({
        uid: Array.from({ length: 10 }, (_, i) => 300 + i * 1013).join(","),
      });
    } finally {
      lock.release();
    }

    m.reset();
    t = performance.now();
    let rawChanged = 0;
    for await (const msg of raw2.fetch(
      "1:*",
      { uid: true, flags: true },
      { uid: true, changedSince: before.highestModseq },
    )) {
      if (msg.uid) rawChanged++;
    }
    const rawIncMs = performance.now() - t;
    rows.push([
      "raw imapflow UID FETCH 1:* (FLAGS) (CHANGEDSINCE m VANISHED), mailbox selected",
      `${rawChanged} changed`,
      `${rawIncMs.toFixed(1)} ms`,
      kb(m.read().down),
      String(m.read().writes),
      "",
    ]);
    await raw2.logout();

    {
      m.reset();
      t = performance.now();
      const out = await live.account.folder("INBOX").exportChanges({}, live.state);
      const took = performance.now() - t;
      const used = m.read();
      const c = out.counts;
      rows.push([
        "incremental after 10 flags + 10 expunges, long-lived connection (QRESYNC)",
        `${c.update}u ${c.read}r ${c.delete}d`,
        `${took.toFixed(1)} ms`,
        kb(used.down),
        String(used.writes),
        `${(took / rawIncMs).toFixed(2)}× raw incremental`,
      ]);
      await live.account.close();
    }
    for (const mode of ["auto", "condstore", "plain"] as const) {
      const fresh = createImapAccount({ ...options, mode });
      m.reset();
      t = performance.now();
      const out = await fresh.folder("INBOX").exportChanges({}, states[mode]);
      const took = performance.now() - t;
      const used = m.read();
      const c = out.counts;
      rows.push([
        `incremental after 10 flags + 10 expunges, new connection (${mode === "auto" ? "QRESYNC" : mode})`,
        `${c.update}u ${c.read}r ${c.delete}d`,
        `${took.toFixed(0)} ms`,
        kb(used.down),
        String(used.writes),
        `${(took / rawMs).toFixed(3)}× raw full`,
      ]);
      await fresh.close();
    }
    await client.logout();
    console.log(
      `Dovecot 2.3, ${MESSAGES.toLocaleString("en")} messages (maildir seeded in ${seedTime}, first SELECT/index ${indexTime}); bytes and client writes measured through a loopback proxy, including login.\n`,
    );
    console.log(
      "| run | changes | time | bytes down | client writes (≈ round trips) | time vs raw |",
    );
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  } finally {
    m.close();
    await dovecot.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
