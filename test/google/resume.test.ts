/**
 * Issue 10 on Google: resumes inside a page re-ask Google for a new snapshot, so whatever the
 * state says it delivered must be proven unchanged or verified (events.get / people.get /
 * messages.get); a failed first full sync must not leave deleted objects behind; a state of
 * another account or server is refused. Driven through the public API and `runSync`, with
 * crashes at batch boundaries, mutations before the resume and writes made mid-fetch.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { eventsSource } from "../../adapters/google/google-calendar.js";
import { accountOf } from "../../adapters/google/google-shared.js";
import { classifyGoogleError, type GoogleAccount } from "../../adapters/google/index.js";
import { StateError, StateInvalidError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { DeletedObject, SyncObject } from "../../src/core/types.js";
import { createHttpClient } from "../../src/http/index.js";
import { runSync } from "../../src/orchestrator/index.js";
import { createMemoryStateStore } from "../../src/stores/index.js";
import { GoogleEmulator } from "./emulator.js";
import { encodeToken } from "./emulator-journal.js";
import { eventTruth, projectEvent } from "./harness.js";
import { account } from "./helpers.js";

let emulator: GoogleEmulator;
let other: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
  other = await GoogleEmulator.start({ emailAddress: "other@example.com" });
});
afterAll(async () => {
  await emulator.close();
  await other.close();
});
beforeEach(() => {
  emulator.reset();
  emulator.options.maxPageSize = 3;
  emulator.model.addCalendar("primary");
});

const opened: GoogleAccount[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

/** A new account, as a fresh process would build it (no read-ahead pages kept). */
function fresh(extra: Parameters<typeof account>[1] = {}): GoogleAccount {
  const a = account(emulator, extra);
  opened.push(a);
  return a;
}

/**
 * A mirror that honours the full-sync bracket like the SQLite mirror: what a full sync did not
 * update between `beginFullSync` and `endFullSync` is dropped.
 */
function mirror() {
  const items = new Map<string, SyncObject>();
  const reads = new Map<string, boolean>();
  let touched: Set<string> | undefined;
  let failAt = 0;
  let calls = 0;
  let during: ((obj: SyncObject) => void) | undefined;
  const importer = {
    update(obj: SyncObject) {
      calls++;
      if (calls === failAt) throw new Error("crash");
      during?.(obj);
      items.set(obj.sourcekey, obj);
      // The update carries the read flag in its data (Gmail labelIds).
      reads.delete(obj.sourcekey);
      touched?.add(obj.sourcekey);
    },
    delete(obj: DeletedObject) {
      items.delete(obj.sourcekey);
      reads.delete(obj.sourcekey);
    },
    read(obj: { sourcekey: string }, isRead: boolean) {
      reads.set(obj.sourcekey, isRead);
    },
    beginFullSync() {
      touched = new Set();
    },
    endFullSync() {
      for (const key of [...items.keys()]) if (!touched?.has(key)) items.delete(key);
      touched = undefined;
    },
    reset() {
      items.clear();
      reads.clear();
    },
  };
  return {
    items,
    reads,
    importer,
    /** Throw from the `n`-th update from now (a crash inside a batch). */
    failAt(n: number) {
      calls = 0;
      failAt = n;
    },
    /** Run `fn` inside every update call (another client writing mid-fetch). */
    during(fn: ((obj: SyncObject) => void) | undefined) {
      during = fn;
    },
  };
}

type Mirror = ReturnType<typeof mirror>;

function eventsOf(m: Mirror): Record<string, unknown> {
  return Object.fromEntries(
    [...m.items].map(([k, o]) => [k, projectEvent(o.data as Record<string, unknown>)]),
  );
}

function truth(calendarId = "primary", singleEvents = false): Record<string, unknown> {
  return Object.fromEntries(
    [...eventTruth(emulator.model, calendarId, singleEvents)].map(([k, e]) => [k, e.data]),
  );
}

/** Runs `exportChanges` rounds of `maxChanges`, each from a fresh account, until complete. */
async function drain(
  open: () => Syncable,
  m: Mirror,
  state: string | undefined,
  maxChanges: number,
  between: (round: number) => void = () => {},
): Promise<string> {
  let current = state;
  for (let round = 0; round < 100; round++) {
    const out = await open().exportChanges(m.importer, current ?? null, { maxChanges });
    current = out.state;
    if (out.complete) return current;
    between(round);
  }
  throw new Error("no end");
}

const model = () => emulator.model;

describe("calendar: a resume inside a page (no page token) is exact", () => {
  const mutations: [string, (ids: string[]) => void][] = [
    ["an event inserted", () => void model().insertEvent("primary", { summary: "new", day: 9 })],
    [
      "the delivered event updated",
      (ids) => model().updateEvent("primary", ids[0] as string, { summary: "b" }),
    ],
    ["the delivered event deleted", (ids) => void model().deleteEvent("primary", ids[0] as string)],
    [
      "the delivered event updated, then reverted, and an event inserted",
      (ids) => {
        model().updateEvent("primary", ids[0] as string, { summary: "b" });
        model().updateEvent("primary", ids[0] as string, { summary: "a" });
        model().insertEvent("primary", { summary: "new", day: 9 });
      },
    ],
    [
      "an undelivered event deleted and the delivered one updated",
      (ids) => {
        model().deleteEvent("primary", ids[2] as string);
        model().updateEvent("primary", ids[0] as string, { summary: "b" });
      },
    ],
  ];

  for (const [what, mutate] of mutations) {
    it(`runSync, batchSize 1, crash in batch 2, ${what}, restart: the mirror equals the server`, async () => {
      const ids = [0, 1, 2].map((day) => model().insertEvent("primary", { summary: "a", day }));
      const store = createMemoryStateStore();
      const m = mirror();
      m.failAt(2);
      await expect(
        runSync(fresh().calendar("primary"), {
          importer: m.importer,
          store,
          batchSize: 1,
          retry: false,
        }),
      ).rejects.toThrow();
      expect(m.items.size).toBe(1);
      mutate(ids);
      m.failAt(0);
      const resumed = await runSync(fresh().calendar("primary"), {
        importer: m.importer,
        store,
        batchSize: 1,
      });
      expect(eventsOf(m)).toEqual(truth());
      // Verified in place: no forced full resync.
      expect(resumed.reset).toBe(false);
      // And the next delta starts from a state that covers exactly that.
      model().insertEvent("primary", { summary: "later", day: 4 });
      await runSync(fresh().calendar("primary"), { importer: m.importer, store, batchSize: 1 });
      expect(eventsOf(m)).toEqual(truth());
    });
  }

  it("maxChanges 1 from a fresh process each round, with deletes, reverts and inserts between rounds (full and delta, both singleEvents modes)", async () => {
    for (const singleEvents of [false, true]) {
      emulator.reset();
      emulator.options.maxPageSize = 4;
      model().addCalendar("primary");
      const series = model().insertEvent("primary", { summary: "s", day: 1, count: 3 });
      for (let day = 2; day < 6; day++) model().insertEvent("primary", { summary: "a", day });
      const m = mirror();
      const open = () => fresh({ singleEvents }).calendar("primary");
      let flip = 0;
      const between = (round: number) => {
        // A writer that never stops would outrun one change per round.
        if (round >= 16) return;
        const live = model()
          .liveEventIds("primary")
          .filter((id) => id !== series);
        const id = live[round % Math.max(1, live.length)];
        if (round % 4 === 0 && id) model().deleteEvent("primary", id);
        else if (round % 4 === 1 && id)
          model().updateEvent("primary", id, { summary: flip++ % 2 ? "a" : "b" });
        else if (round % 4 === 2) model().exception("primary", series, round % 3, "x");
        else model().insertEvent("primary", { summary: "a", day: round });
      };
      const state = await drain(open, m, undefined, 1, between);
      // Settle what the last mutations did, then compare.
      await drain(open, m, state, 1000);
      expect(eventsOf(m), `singleEvents=${singleEvents}`).toEqual(truth("primary", singleEvents));
      const again = await drain(open, m, state, 1, between);
      await drain(open, m, again, 1000);
      expect(eventsOf(m), `singleEvents=${singleEvents}`).toEqual(truth("primary", singleEvents));
    }
  });

  it("another client writing from inside the importer while a multi-page fetch is in flight", async () => {
    for (let day = 0; day < 8; day++) model().insertEvent("primary", { summary: "a", day });
    const m = mirror();
    let n = 0;
    // While the importer holds the object just delivered, another client changes it (it moves
    // to the end of Google's order), deletes it, or adds an event.
    m.during((obj) => {
      n++;
      if (n > 12) return;
      if (n % 3 === 0) model().deleteEvent("primary", obj.sourcekey);
      else if (n % 3 === 1)
        model().updateEvent("primary", obj.sourcekey, { summary: n % 2 ? "b" : "a" });
      else model().insertEvent("primary", { summary: "a", day: n });
    });
    const open = () => fresh({ prefetch: false }).calendar("primary");
    const state = await drain(open, m, undefined, 1);
    m.during(undefined);
    await drain(open, m, state, 1000);
    expect(eventsOf(m)).toEqual(truth());
  });
});

describe("verified keys are delivered once", () => {
  // A verified change is delivered once: with maxChanges 1 and two verified keys, a resume that
  // re-delivered it every time would never get past the first (core, delivered.ts).
  it("two delivered events moved off the page before a resume with maxChanges 1: the round completes", async () => {
    emulator.options.maxPageSize = 4;
    const ids = [0, 1, 2, 3, 4, 5].map((day) =>
      model().insertEvent("primary", { summary: "a", day }),
    );
    const m = mirror();
    const open = () => fresh({ prefetch: false }).calendar("primary");
    const first = await open().exportChanges(m.importer, null, { maxChanges: 3 });
    // Updated events move to the end of Google's order: off the first page, so verified.
    model().updateEvent("primary", ids[0] as string, { summary: "b" });
    model().updateEvent("primary", ids[1] as string, { summary: "b" });
    await drain(open, m, first.state, 1);
    expect(eventsOf(m)).toEqual(truth());
  });
});

describe("a round resumed from a page token ends current, not at its old snapshot", () => {
  it("calendar, contacts and Gmail: crash after a page, changes to delivered objects, restart", async () => {
    emulator.options.maxPageSize = 2;
    const events = [0, 1, 2, 3, 4].map((day) =>
      model().insertEvent("primary", { summary: "a", day }),
    );
    const people = ["a", "b", "c", "d", "e"].map((n) => model().addPerson(n));
    const messages = ["a", "b", "c", "d", "e"].map((x) => model().receiveMessage(x));
    const cases: [
      string,
      (g: GoogleAccount) => Syncable,
      () => void,
      (m: Mirror) => unknown,
      () => unknown,
    ][] = [
      [
        "calendar",
        (g) => g.calendar("primary"),
        () => {
          model().updateEvent("primary", events[0] as string, { summary: "b" });
          model().deleteEvent("primary", events[1] as string);
        },
        eventsOf,
        () => truth(),
      ],
      [
        "contacts",
        (g) => g.contacts(),
        () => {
          model().updatePerson(people[0] as string, "z");
          model().deletePerson(people[1] as string);
        },
        (m) =>
          [...m.items]
            .map(([k, o]) => [
              k,
              (o.data as { names: { displayName: string }[] }).names[0]?.displayName,
            ])
            .sort(),
        () =>
          model()
            .livePeople()
            .map((p) => [p.resourceName, p.names?.[0]?.displayName])
            .sort(),
      ],
      [
        "gmail",
        (g) => g.mail(),
        () => {
          model().deleteMessage(messages[4] as string);
          model().receiveMessage("f");
        },
        (m) => [...m.items.keys()].sort(),
        () =>
          model()
            .liveMessages()
            .map((x) => x.id)
            .sort(),
      ],
    ];
    for (const [what, open, mutate, mine, theirs] of cases) {
      const store = createMemoryStateStore();
      const m = mirror();
      m.failAt(3);
      await expect(
        runSync(open(fresh()), { importer: m.importer, store, batchSize: 2, retry: false }),
        what,
      ).rejects.toThrow();
      expect(m.items.size, what).toBe(2);
      mutate();
      m.failAt(0);
      await runSync(open(fresh()), { importer: m.importer, store, batchSize: 2 });
      expect(mine(m), what).toEqual(theirs());
    }
  });
});

describe("a failed first full sync leaves nothing behind", () => {
  it("direct sync: objects deleted on the server before the retry are swept from the mirror", async () => {
    const ids = [0, 1, 2, 3, 4].map((day) => model().insertEvent("primary", { summary: "a", day }));
    const m = mirror();
    m.failAt(4);
    await expect(fresh().calendar("primary").sync(m.importer)).rejects.toThrow();
    expect(m.items.has(ids[0] as string)).toBe(true);
    model().deleteEvent("primary", ids[0] as string);
    m.failAt(0);
    await fresh().calendar("primary").sync(m.importer);
    expect(eventsOf(m)).toEqual(truth());
  });

  it("runSync: a batch applied, the process killed before its state was saved, a delete, a restart", async () => {
    const ids = [0, 1, 2, 3, 4].map((day) => model().insertEvent("primary", { summary: "a", day }));
    const m = mirror();
    const store = createMemoryStateStore();
    // The batch is applied, then saving its state fails (the process dies).
    const dying = {
      get: (key: string) => store.get(key),
      set: async () => {
        throw new Error("killed");
      },
    };
    await expect(
      runSync(fresh().calendar("primary"), {
        importer: m.importer,
        getState: () => dying.get("k"),
        saveState: dying.set,
        batchSize: 2,
        retry: false,
      }),
    ).rejects.toThrow();
    expect(m.items.size).toBe(2);
    model().deleteEvent("primary", ids[0] as string);
    model().deleteEvent("primary", ids[1] as string);
    await runSync(fresh().calendar("primary"), { importer: m.importer, store, batchSize: 2 });
    expect(eventsOf(m)).toEqual(truth());
  });
});

describe("a batch applied in part, then a crash before its state was saved", () => {
  it("calendar and Gmail: an object of the lost batch deleted before the restart leaves the copy", async () => {
    emulator.options.maxPageSize = 10;
    for (let day = 0; day < 5; day++) model().insertEvent("primary", { summary: "a", day });
    for (const x of ["a", "b", "c", "d", "e"]) model().receiveMessage(x);
    const cases: [string, (g: GoogleAccount) => Syncable, (key: string) => void, () => string[]][] =
      [
        [
          "calendar",
          (g) => g.calendar("primary"),
          (key) => void model().deleteEvent("primary", key),
          () => model().liveEventIds("primary").sort(),
        ],
        [
          "gmail",
          (g) => g.mail(),
          (key) => void model().deleteMessage(key),
          () =>
            model()
              .liveMessages()
              .map((x) => x.id)
              .sort(),
        ],
      ];
    for (const [what, open, remove, live] of cases) {
      const store = createMemoryStateStore();
      const m = mirror();
      // Batch 1 (two changes) is saved; batch 2 applies one change, then the process dies.
      m.failAt(4);
      await expect(
        runSync(open(fresh()), { importer: m.importer, store, batchSize: 2, retry: false }),
        what,
      ).rejects.toThrow();
      const lost = [...m.items.keys()][2] as string;
      remove(lost);
      m.failAt(0);
      await runSync(open(fresh()), { importer: m.importer, store, batchSize: 2 });
      expect([...m.items.keys()].sort(), what).toEqual(live());
    }
  });
});

describe("contacts and Gmail: resumes inside a page verify what they delivered", () => {
  it("contacts: a delivered contact deleted or renamed before the resume", async () => {
    const people = ["a", "b", "c"].map((n) => model().addPerson(n));
    for (const mutate of [
      () => model().deletePerson(people[0] as string),
      () => model().updatePerson(people[1] as string, "z"),
    ]) {
      const m = mirror();
      const open = () => fresh().contacts();
      const first = await open().exportChanges(m.importer, null, { maxChanges: 2 });
      mutate();
      const state = await drain(open, m, first.state, 1);
      const names = (mm: Mirror) =>
        Object.fromEntries(
          [...mm.items].map(([k, o]) => [
            k,
            (o.data as { names?: { displayName: string }[] }).names?.[0]?.displayName,
          ]),
        );
      const live = Object.fromEntries(
        model()
          .livePeople()
          .map((p) => [p.resourceName, p.names?.[0]?.displayName]),
      );
      expect(names(m)).toEqual(live);
      await drain(open, m, state, 1000);
      expect(names(m)).toEqual(live);
    }
  });

  it("Gmail: a delivered message deleted, a new one arrived, read flags toggled before the resume", async () => {
    const ids = ["a", "b", "c"].map((s) => model().receiveMessage(s));
    const m = mirror();
    const open = () => fresh().mail();
    const first = await open().exportChanges(m.importer, null, { maxChanges: 1 });
    const delivered = [...m.items.keys()][0] as string;
    model().deleteMessage(delivered);
    model().receiveMessage("d");
    model().setLabel(ids.find((id) => id !== delivered) as string, "UNREAD", false);
    const state = await drain(open, m, first.state, 1);
    await drain(open, m, state, 1000);
    const live = model().liveMessages();
    expect([...m.items.keys()].sort()).toEqual(live.map((x) => x.id).sort());
    for (const msg of live) {
      const labels = m.reads.has(msg.id)
        ? m.reads.get(msg.id)
        : !(
            (m.items.get(msg.id)?.data as { labelIds?: string[] } | undefined)?.labelIds ?? []
          ).includes("UNREAD");
      expect(labels, msg.id).toBe(!msg.labelIds.includes("UNREAD"));
    }
  });
});

describe("states that name another account or server", () => {
  it("a state made on another account (calendar, contacts, mail, calendar list) is a StateError", async () => {
    other.reset();
    other.model.addCalendar("primary");
    other.model.insertEvent("primary", { summary: "x", day: 1 });
    model().insertEvent("primary", { summary: "y", day: 1 });
    const theirs = account(other);
    opened.push(theirs);
    const ours = fresh();
    const pairs: [Syncable, Syncable][] = [
      [theirs.calendar("primary"), ours.calendar("primary")],
      [theirs.contacts(), ours.contacts()],
      [theirs.mail(), ours.mail()],
      [theirs.calendarList(), ours.calendarList()],
    ];
    for (const [from, to] of pairs) {
      const state = await from.sync({});
      await expect(to.sync({}, state), to.scope).rejects.toBeInstanceOf(StateError);
      // Mid-round states too.
      const mid = await from.exportChanges({}, null, { maxChanges: 1 });
      if (!mid.complete)
        await expect(to.sync({}, mid.state), to.scope).rejects.toBeInstanceOf(StateError);
    }
  });

  it("a state of another accountId is a StateError; the account is asked once, not per round", async () => {
    const alice = fresh({ accountId: "alice@example.com" });
    const state = await alice.calendar("primary").sync({});
    await expect(
      fresh({ accountId: "bob@example.com" }).calendar("primary").sync({}, state),
    ).rejects.toBeInstanceOf(StateError);
    const google = fresh();
    let s = await google.calendar("primary").sync({});
    for (let i = 0; i < 3; i++) s = await google.calendar("primary").sync({}, s);
    await google.calendarList().sync({});
    const lookups = emulator.requests.filter((r) => r.path === "/calendar/v3/calendars/primary");
    expect(lookups).toHaveLength(1);
  });

  it("a state of calendar A used on calendar B is a StateError", async () => {
    model().addCalendar("work");
    const google = fresh();
    const state = await google.calendar("work").sync({});
    await expect(google.calendar("primary").sync({}, state)).rejects.toBeInstanceOf(StateError);
  });

  it("a sync token the server never issued (another server, or ahead of its history) is StateInvalidError", async () => {
    // Same account, another server (restored from elsewhere): the token is not one it issued.
    const twin = await GoogleEmulator.start();
    twin.model.addCalendar("primary");
    const theirs = account(twin);
    const state = await theirs.calendar("primary").sync({});
    await theirs.close();
    await twin.close();
    await expect(fresh().calendar("primary").sync({}, state)).rejects.toBeInstanceOf(
      StateInvalidError,
    );
  });
});

interface ListBody {
  items: { id: string; status?: string }[];
  nextPageToken?: string;
  nextSyncToken?: string;
  error: { errors: { reason: string }[] };
}

describe("the emulator behaves as Google documents", () => {
  async function list(query: Record<string, string>): Promise<{ status: number; body: ListBody }> {
    const url = new URL(`${emulator.url}calendar/v3/calendars/primary/events`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as ListBody };
  }

  it("full syncs omit cancelled events unless showDeleted=true; nextSyncToken only on the last page", async () => {
    emulator.options.maxPageSize = 2500;
    const a = model().insertEvent("primary", { summary: "a", day: 1 });
    model().insertEvent("primary", { summary: "b", day: 2 });
    model().deleteEvent("primary", a);
    const plain = await list({});
    expect(plain.body.items.map((e) => e.id)).not.toContain(a);
    const deleted = await list({ showDeleted: "true" });
    expect(deleted.body.items.find((e) => e.id === a)?.status).toBe("cancelled");
    emulator.options.maxPageSize = 1;
    const first = await list({});
    expect(first.body.nextPageToken).toBeDefined();
    expect(first.body.nextSyncToken).toBeUndefined();
    const last = await list({ pageToken: first.body.nextPageToken as string });
    expect(last.body.nextPageToken).toBeUndefined();
    expect(last.body.nextSyncToken).toBeDefined();
  });

  it("410 fullSyncRequired for an expired token, a token ahead of the history and one of another server", async () => {
    const nextSyncToken = (await list({})).body.nextSyncToken as string;
    const seq = model().seq;
    const epoch = model().epoch;
    const ahead = encodeToken("cs", { s: seq + 5, c: "primary", e: epoch });
    const foreign = encodeToken("cs", { s: seq, c: "primary", e: "elsewhere" });
    for (const token of [ahead, foreign]) {
      const res = await list({ syncToken: token });
      expect(res.status).toBe(410);
      expect(res.body.error.errors[0]?.reason).toBe("fullSyncRequired");
    }
    expect((await list({ syncToken: nextSyncToken })).status).toBe(200);
    model().expire();
    expect((await list({ syncToken: nextSyncToken })).status).toBe(410);
  });

  it("events.get returns cancelled events and the instances of a series; 404 for unknown ids", async () => {
    const s = model().insertEvent("primary", { summary: "s", day: 1, count: 3 });
    const e = model().insertEvent("primary", { summary: "e", day: 1 });
    model().deleteEvent("primary", e);
    const get = async (id: string) => {
      const res = await fetch(`${emulator.url}calendar/v3/calendars/primary/events/${id}`);
      return { status: res.status, body: (await res.json()) as { status?: string; id?: string } };
    };
    expect((await get(e)).body.status).toBe("cancelled");
    expect((await get(`${s}_2`)).body).toMatchObject({ id: `${s}_2`, status: "confirmed" });
    expect((await get("nope")).status).toBe(404);
  });
});

describe("verify: the current version of delivered keys", () => {
  const signal = new AbortController().signal;
  const http = () =>
    createHttpClient({
      baseUrl: `${emulator.url}calendar/v3/`,
      classify: classifyGoogleError,
      retry: { retries: 0 },
    });
  const account = async () => "me@example.com";
  const request = (window?: { timeMin?: string; timeMax?: string }) => ({
    cursor: undefined,
    page: undefined,
    fullSync: true,
    window,
    signal,
  });

  it("events: update (created false) when live, delete when cancelled, purged (404) or outside the window", async () => {
    const live = model().insertEvent("primary", { summary: "a", day: 1 });
    const gone = model().insertEvent("primary", { summary: "b", day: 2 });
    const late = model().insertEvent("primary", { summary: "c", day: 40 });
    model().deleteEvent("primary", gone);
    const client = http();
    const source = eventsSource({
      http: client,
      calendarId: "primary",
      pageSize: 10,
      singleEvents: false,
      account,
    });
    const changes = await source.verify(
      [live, gone, "never", late],
      request({ timeMax: "2026-01-20T00:00:00Z" }),
    );
    expect(changes.map((c) => [c.kind, c.object.sourcekey])).toEqual([
      ["update", live],
      ["delete", gone],
      ["delete", "never"],
      ["delete", late],
    ]);
    expect(changes[0]).toMatchObject({ created: false, object: { parentKey: "primary" } });
    expect(await source.identity(signal)).toBe("me@example.com calendar:primary");
    await client.close();
  });

  it("events: instances by id with singleEvents; a cancelled exception of a live series is kept without it", async () => {
    const s = model().insertEvent("primary", { summary: "s", day: 1, count: 3 });
    model().exception("primary", s, 1);
    const client = http();
    const open = (singleEvents: boolean) =>
      eventsSource({ http: client, calendarId: "primary", pageSize: 10, singleEvents, account });
    const expanded = await open(true).verify([`${s}_0`, `${s}_1`, `${s}_7`], request());
    expect(expanded.map((c) => c.kind)).toEqual(["update", "delete", "delete"]);
    const series = await open(false).verify([s, `${s}_1`], request());
    expect(series.map((c) => c.kind)).toEqual(["update", "update"]);
    model().deleteEvent("primary", s);
    const after = await open(false).verify([s, `${s}_1`], request());
    expect(after.map((c) => c.kind)).toEqual(["delete", "delete"]);
    await client.close();
  });
});

describe("Gmail: a history page listing one message several times", () => {
  it("resumes with maxChanges 1 (no endless re-delivery) and ends with the last flags", async () => {
    emulator.options.maxPageSize = 50;
    const ids = ["a", "b"].map((x) => model().receiveMessage(x));
    const m = mirror();
    const open = () => fresh().mail();
    const state = await drain(open, m, undefined, 1000);
    const [a, b] = ids as [string, string];
    model().setLabel(a, "UNREAD", false);
    model().setLabel(a, "STARRED", true);
    model().setLabel(b, "UNREAD", false);
    model().setLabel(a, "UNREAD", true);
    model().setLabel(b, "UNREAD", true);
    const c = model().receiveMessage("c");
    model().setLabel(c, "UNREAD", false);
    await drain(open, m, state, 1);
    const read = (id: string) =>
      m.reads.get(id) ??
      !((m.items.get(id)?.data as { labelIds?: string[] } | undefined)?.labelIds ?? []).includes(
        "UNREAD",
      );
    expect([a, b, c].map(read)).toEqual([false, false, true]);
  });
});

describe("verify with a window", () => {
  it("a series that started before timeMin but recurs into the window is kept (singleEvents=false)", async () => {
    const series = model().insertEvent("primary", { summary: "s", day: 1, count: 5 });
    const single = model().insertEvent("primary", { summary: "e", day: 1 });
    const client = createHttpClient({
      baseUrl: `${emulator.url}calendar/v3/`,
      classify: classifyGoogleError,
      retry: { retries: 0 },
    });
    const source = eventsSource({
      http: client,
      calendarId: "primary",
      pageSize: 10,
      singleEvents: false,
      account: async () => "me",
    });
    const window = { timeMin: "2026-01-04T00:00:00Z" };
    // The full sync lists the series (its later instances overlap the window), not the event.
    const full = await source.fetchPage({
      cursor: undefined,
      page: undefined,
      fullSync: true,
      window,
      signal: new AbortController().signal,
    });
    expect(full.changes.map((c) => c.object.sourcekey)).toEqual([series]);
    const verified = await source.verify([series, single], {
      cursor: undefined,
      page: undefined,
      fullSync: true,
      window,
      signal: new AbortController().signal,
    });
    expect(verified.map((c) => c.kind)).toEqual(["update", "delete"]);
    await client.close();
  });
});

describe("accountOf: the account lookup behind identity()", () => {
  it("is asked once, shared by callers, not failed by another caller's abort, asked again after a failure", async () => {
    let asked = 0;
    let fail = true;
    let release: (v: string) => void = () => {};
    const lookup = accountOf(undefined, () => {
      asked++;
      if (fail) {
        fail = false;
        return Promise.reject(new Error("down"));
      }
      return new Promise<string>((resolve) => {
        release = resolve;
      });
    });
    const live = new AbortController().signal;
    await expect(lookup(live)).rejects.toThrow("down");
    const aborting = new AbortController();
    const first = lookup(aborting.signal);
    const second = lookup(live);
    aborting.abort(new Error("round no longer needed"));
    await expect(first).rejects.toThrow("round no longer needed");
    release("me@example.com");
    await expect(second).resolves.toBe("me@example.com");
    await expect(lookup(live)).resolves.toBe("me@example.com");
    expect(asked).toBe(2);
    expect(await accountOf("fixed", () => Promise.reject(new Error("never")))(live)).toBe("fixed");
  });
});
