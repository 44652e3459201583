/**
 * dav: 5,000 events in Radicale. Cold start (discovery) + full sync, then a 10-change
 * incremental sync: deltasync vs tsdav (`DAVClient.login` + `fetchCalendars` +
 * `smartCollectionSync`), same run, same server. Requests are counted by a small proxy in front
 * of Radicale that both clients go through.
 */
import { Agent, createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { calendarMultiGet, type DAVCalendar, DAVClient } from "tsdav";
import { setGlobalDispatcher, Agent as UndiciAgent } from "undici";
import { createDavAccount } from "../adapters/dav/index.js";
import { noBackpressure } from "../src/http/index.js";
import { startRadicale } from "../test/servers/radicale.js";

const EVENTS = Number(process.env.DAV_BENCH_EVENTS ?? 5000);
const ROUNDS = Number(process.env.DAV_BENCH_ROUNDS ?? 3);
const CHANGES = 10;
const USER = "alice";
const PASSWORD = "secret";
const CAL = `/${USER}/bench/`;

function event(i: number, version = 0): string {
  const description = `Event ${i} v${version} `.padEnd(200, "lorem ipsum dolor sit amet ");
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//deltasync//bench//EN",
    "BEGIN:VEVENT",
    `UID:bench-${i}`,
    "DTSTAMP:20240101T000000Z",
    `DTSTART:202401${String((i % 28) + 1).padStart(2, "0")}T100000Z`,
    `DTEND:202401${String((i % 28) + 1).padStart(2, "0")}T110000Z`,
    `SUMMARY:Bench event ${i} v${version}`,
    `DESCRIPTION:${description}`,
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

/** A pass-through proxy that counts requests. */
async function countingProxy(target: string) {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  let count = 0;
  const server = createServer((req, res) => {
    count++;
    const up = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    reset() {
      count = 0;
    },
    get count() {
      return count;
    },
    close: () =>
      new Promise<void>((r) => {
        agent.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const progress = (what: string) => {
  if (process.env.DAV_BENCH_VERBOSE) console.error(`[dav bench] ${what}`);
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function main(): Promise<void> {
  // Loading the undici package makes it Node's global fetch dispatcher (tsdav uses fetch); with
  // Radicale closing every connection it crashed here (nodejs/undici#5360): same guard as ours.
  const fetchAgent = new UndiciAgent();
  setGlobalDispatcher(noBackpressure(fetchAgent));
  const files: Record<string, string> = {};
  for (let i = 0; i < EVENTS; i++) files[`bench-${i}.ics`] = event(i);
  const radicale = await startRadicale({
    storage: "disk",
    seed: [{ name: "bench", kind: "calendar", displayname: "Bench", files }],
  });
  const proxy = await countingProxy(radicale.url);
  const auth = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
  try {
    // Radicale parses and caches every item on first access: warm it before timing anyone.
    await fetch(`${radicale.url}${CAL}`, {
      method: "PROPFIND",
      headers: { authorization: auth, depth: "1" },
    }).then((r) => r.text());

    /**
     * deltasync's cold start: a new account finds the principal and the calendar home by itself
     * (`calendar(name)`), or lists every collection with ctag and sync-token first (`discover()`).
     */
    const deltasyncFull = async (how: "calendar" | "discover", parse = true) => {
      const account = createDavAccount({
        url: `${proxy.url}/`,
        username: USER,
        password: PASSWORD,
        parse,
      });
      let n = 0;
      const importer = { update: () => void n++ };
      let state: string;
      if (how === "discover") {
        const found = await account.discover();
        const cal = found.collections.find((c) => c.href === CAL);
        if (!cal) throw new Error("deltasync did not find the bench calendar");
        state = await account.collection(cal.href).sync(importer);
      } else {
        state = await account.calendar("bench").sync(importer);
      }
      await account.close();
      if (n !== EVENTS) throw new Error(`deltasync exported ${n} of ${EVENTS} events`);
      return state;
    };
    const tsdavFull = async () => {
      const client = new DAVClient({
        serverUrl: `${proxy.url}/`,
        credentials: { username: USER, password: PASSWORD },
        authMethod: "Basic",
        defaultAccountType: "caldav",
      });
      await client.login();
      const calendars = await client.fetchCalendars();
      const calendar = calendars.find((c) => new URL(c.url).pathname === CAL);
      if (!calendar) throw new Error("tsdav did not find the bench calendar");
      const synced = (await client.smartCollectionSync({
        // As tsdav's own syncCalendars does: the multiget for changed hrefs.
        collection: {
          ...calendar,
          objects: [],
          syncToken: undefined,
          objectMultiGet: calendarMultiGet,
        },
        method: "webdav",
        account: client.account,
      })) as DAVCalendar & { objects?: unknown[] };
      const n = synced.objects?.length ?? 0;
      if (n !== EVENTS) throw new Error(`tsdav synced ${n} of ${EVENTS} events`);
      return { client, synced };
    };

    type Run = { ds: number[]; dsReq: number; ts: number[]; tsReq: number };
    const blank = (): Run => ({ ds: [], dsReq: 0, ts: [], tsReq: 0 });
    const full = blank();
    const fullDiscover = blank();
    const fullNoParse = blank();
    let state = "";
    let tsdav: Awaited<ReturnType<typeof tsdavFull>> | undefined;
    progress("warm-up: deltasync");
    await deltasyncFull("calendar"); // warm-up of the client code paths, both sides
    await deltasyncFull("discover");
    progress("warm-up: tsdav");
    await tsdavFull();
    progress("measuring");
    for (let r = 0; r < ROUNDS; r++) {
      for (const [run, how, parse] of [
        [fullDiscover, "discover", true],
        [fullNoParse, "calendar", false],
        [full, "calendar", true],
      ] as const) {
        proxy.reset();
        const a = await timed(() => deltasyncFull(how, parse));
        run.ds.push(a.ms);
        run.dsReq = proxy.count;
        state = a.value;
      }
      proxy.reset();
      const b = await timed(tsdavFull);
      for (const run of [full, fullDiscover, fullNoParse]) {
        run.ts.push(b.ms);
        run.tsReq = proxy.count;
      }
      tsdav = b.value;
    }

    const inc = blank();
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < CHANGES; i++) {
        const k = ((r * CHANGES + i) * 37) % EVENTS;
        const res = await fetch(`${radicale.url}${CAL}bench-${k}.ics`, {
          method: "PUT",
          headers: { authorization: auth, "content-type": "text/calendar" },
          body: event(k, r + 1),
        });
        await res.text();
      }
      // deltasync: a fresh account (as after a process restart) with the saved state.
      proxy.reset();
      const a = await timed(async () => {
        const account = createDavAccount({
          url: `${proxy.url}/`,
          username: USER,
          password: PASSWORD,
        });
        let n = 0;
        const next = await account.calendar("bench").sync({ update: () => void n++ }, state);
        await account.close();
        if (n !== CHANGES) throw new Error(`deltasync incremental exported ${n}, not ${CHANGES}`);
        return next;
      });
      inc.ds.push(a.ms);
      inc.dsReq = proxy.count;
      state = a.value;
      if (!tsdav) throw new Error("no tsdav state");
      const { client, synced } = tsdav;
      const before = new Set(((synced.objects ?? []) as { etag?: string }[]).map((o) => o.etag));
      proxy.reset();
      const b = await timed(async () => {
        const res = (await client.smartCollectionSync({
          collection: synced,
          method: "webdav",
        })) as DAVCalendar & { objects?: { etag?: string }[] };
        const n = (res.objects ?? []).filter((o) => !before.has(o.etag)).length;
        if (n !== CHANGES) throw new Error(`tsdav incremental saw ${n}, not ${CHANGES}`);
        return res;
      });
      inc.ts.push(b.ms);
      inc.tsReq = proxy.count;
      tsdav = { client, synced: b.value };
    }

    const row = (name: string, x: Run) => {
      const ds = median(x.ds);
      const ts = median(x.ts);
      return `| ${name} | ${ds.toFixed(0)} ms | ${x.dsReq} | ${ts.toFixed(0)} ms | ${x.tsReq} | ${(ts / ds).toFixed(2)}× |`;
    };
    console.log(
      `\n${EVENTS} events (200-byte descriptions) in Radicale ${"3.x"}, median of ${ROUNDS} rounds; requests counted by a proxy\n`,
    );
    console.log("| scenario | deltasync | requests | tsdav | requests | deltasync speed-up |");
    console.log("| --- | --- | --- | --- | --- | --- |");
    console.log(
      row(
        "cold start + full sync: `calendar(name).sync()` (principal and home found on the way)",
        full,
      ),
    );
    console.log(
      row(
        "cold start + full sync: `discover()` (every collection, ctag, sync-token) + sync",
        fullDiscover,
      ),
    );
    console.log(row("cold start + full sync, `parse: false` (no ical.js basics)", fullNoParse));
    console.log(row(`incremental, ${CHANGES} changed events`, inc));
  } finally {
    await proxy.close();
    await radicale.stop();
    await fetchAgent.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
