/**
 * IMAP adapter against a real Dovecot holding a 50,000-message mailbox (seeded as maildir files
 * before Dovecot starts). Measures, through a byte-counting loopback proxy:
 * - a full sync (envelope + flags + size) against a raw imapflow fetch loop of the same fields;
 * - an incremental sync after 10 flag changes + 10 expunges (QRESYNC, CONDSTORE-only, plain),
 *   which must cost O(changes) in bytes and round trips with QRESYNC, not O(mailbox); on a
 *   long-lived connection for INBOX and for a second mailbox of the same size (`Archive`).
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
/** A mailbox besides INBOX, of the same size, for the long-lived incremental round. */
const OTHER = "Archive";

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
  const dovecot = await startDovecot({
    beforeStart: (s) => {
      seedMaildir(s.maildir(), MESSAGES);
      seedMaildir(join(s.maildir(), `.${OTHER}`), MESSAGES);
    },
  });
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

    // Baseline: raw imapflow, one FETCH 1:* of the same fields, on the open mailbox. Raw and
    // deltasync full syncs alternate (ROUNDS times, medians reported): the machine is shared.
    const rawFetch = async () => {
      m.reset();
      const t0 = performance.now();
      let n = 0;
      for await (const msg of client.fetch("1:*", {
        uid: true,
        flags: true,
        size: true,
        internalDate: true,
        envelope: true,
      })) {
        if (msg.uid) n++;
      }
      return { ms: performance.now() - t0, n, used: m.read() };
    };
    const fullSync = async (chunkSize: number | undefined) => {
      const account = createImapAccount({ ...options, ...(chunkSize ? { chunkSize } : {}) });
      m.reset();
      const t0 = performance.now();
      const out = await account.folder("INBOX").exportChanges({ update: () => undefined });
      return { ms: performance.now() - t0, out, used: m.read(), account };
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const ROUNDS = Number(process.env.ROUNDS ?? 3);
    const raws: number[] = [];
    const fulls: Record<string, number[]> = { "500": [], "5000": [] };
    let rawRun = await rawFetch();
    let full500 = await fullSync(undefined);
    let full5000 = await fullSync(5000);
    for (let r = 0; r < ROUNDS; r++) {
      if (r > 0) {
        rawRun = await rawFetch();
        await full500.account.close();
        full500 = await fullSync(undefined);
        await full5000.account.close();
        full5000 = await fullSync(5000);
      }
      raws.push(rawRun.ms);
      fulls["500"]?.push(full500.ms);
      fulls["5000"]?.push(full5000.ms);
    }
    await full5000.account.close();
    const rawMs = median(raws);
    rows.push([
      `raw imapflow FETCH 1:* (baseline, median of ${ROUNDS})`,
      String(rawRun.n),
      `${rawMs.toFixed(0)} ms`,
      kb(rawRun.used.down),
      String(rawRun.used.writes),
      "1.00×",
    ]);
    for (const [label, runs, last] of [
      ["default 2,000/page", fulls["500"] ?? [], full500],
      ["5,000/page", fulls["5000"] ?? [], full5000],
    ] as const) {
      const took = median(runs);
      rows.push([
        `deltasync full sync (QRESYNC, ${label}, median of ${ROUNDS}; login + SELECT included)`,
        String(last.out.counts.update),
        `${took.toFixed(0)} ms`,
        kb(last.used.down),
        String(last.used.writes),
        `${(took / rawMs).toFixed(2)}× (${(rawMs / took).toFixed(2)}× throughput)`,
      ]);
    }
    // Kept open: the incremental round below runs on this long-lived connection.
    const live = { account: full500.account, state: full500.out.state as string };
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

    // The incremental round on the long-lived connection, on INBOX and on another mailbox of
    // the same size (which keeps a STATUS on the second connection: see imap-mailbox-sync.ts).
    let round = 0;
    const byTime = <T extends { took: number }>(xs: T[]) =>
      [...xs].sort((x, y) => x.took - y.took)[Math.floor(xs.length / 2)] as T;
    for (const path of ["INBOX", OTHER]) {
      if (path !== "INBOX") {
        // Its full sync (untimed) on the same long-lived account, then the same rounds.
        live.state = (await live.account.folder(path).exportChanges({})).state;
      }
      // A second raw session with the mailbox selected (QRESYNC), for the raw baseline.
      const raw2 = new ImapFlow({
        ...options,
        secure: false,
        auth: { user: options.user, pass: options.password },
        logger: false,
        qresync: true,
      });
      await raw2.connect();
      const before = await raw2.mailboxOpen(path);

      // 10 flag changes + 10 expunges through the first client, then the raw baseline and the
      // deltasync round on its long-lived connection; repeated (medians reported), each round
      // on fresh changes.
      let rawSince = before.highestModseq;
      const change = async () => {
        const lock = await client.getMailboxLock(path);
        try {
          // The raw baseline asks for what changed since its last FETCH (its view's HIGHESTMODSEQ).
          const seen = await raw2.status(path, { highestModseq: true });
          rawSince = (seen ? seen.highestModseq : undefined) ?? rawSince;
          const r = round++;
          for (let i = 0; i < 10; i++)
            await client.messageFlagsAdd({ uid: `${100 + i * 997 + r}` }, ["\\Flagged"]);
          await client.messageFlagsAdd({ uid: `${200 + r}` }, ["\\Seen"]);
          await client.messageDelete({
            uid: Array.from({ length: 10 }, (_, i) => 300 + i * 1013 + r).join(","),
          });
        } finally {
          lock.release();
        }
      };
      const rawRound = async () => {
        m.reset();
        const t0 = performance.now();
        let n = 0;
        for await (const msg of raw2.fetch(
          "1:*",
          { uid: true, flags: true },
          { uid: true, changedSince: rawSince },
        )) {
          if (msg.uid) n++;
        }
        return { took: performance.now() - t0, n, used: m.read() };
      };
      const liveRound = async () => {
        m.reset();
        const t0 = performance.now();
        const out = await live.account.folder(path).exportChanges({}, live.state);
        const took = performance.now() - t0;
        live.state = out.state;
        return { took, out, used: m.read() };
      };
      const rawIncs: Awaited<ReturnType<typeof rawRound>>[] = [];
      const liveIncs: Awaited<ReturnType<typeof liveRound>>[] = [];
      for (let r = 0; r < Math.max(ROUNDS, 5); r++) {
        await change();
        rawIncs.push(await rawRound());
        liveIncs.push(await liveRound());
      }
      const rawInc = byTime(rawIncs);
      const rawIncMs = rawInc.took;
      rows.push([
        `${path}: raw imapflow UID FETCH 1:* (FLAGS) (CHANGEDSINCE m VANISHED), mailbox selected (median of ${rawIncs.length})`,
        `${rawInc.n} changed`,
        `${rawIncMs.toFixed(1)} ms`,
        kb(rawInc.used.down),
        String(rawInc.used.writes),
        "",
      ]);
      await raw2.logout();
      const inc = byTime(liveIncs);
      const c = inc.out.counts;
      rows.push([
        `${path}: incremental after 10 flags + 10 expunges, long-lived connection (QRESYNC, median of ${liveIncs.length}; all: ${liveIncs.map((x) => x.took.toFixed(1)).join(", ")} ms)`,
        `${c.update}u ${c.read}r ${c.delete}d`,
        `${inc.took.toFixed(1)} ms`,
        kb(inc.used.down),
        String(inc.used.writes),
        `${(inc.took / rawIncMs).toFixed(2)}× raw incremental`,
      ]);
    }
    await live.account.close();
    const inboxRounds = Math.max(ROUNDS, 5);
    for (const mode of ["auto", "condstore", "plain"] as const) {
      const fresh = createImapAccount({ ...options, mode });
      m.reset();
      t = performance.now();
      const out = await fresh.folder("INBOX").exportChanges({}, states[mode]);
      const took = performance.now() - t;
      const used = m.read();
      const c = out.counts;
      rows.push([
        `INBOX: incremental after ${inboxRounds} × (10 flags + 1 seen + 10 expunges), new connection (${mode === "auto" ? "QRESYNC" : mode})`,
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
