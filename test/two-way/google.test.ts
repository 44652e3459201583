/**
 * Two-way sync with Google Calendar, against the emulator (test/google): client-chosen event
 * ids, If-Match → 412, and random histories of local and remote edits with crashing pushes.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { base32hex } from "../../adapters/google/google-write.js";
import { ConflictError, NotFoundError } from "../../src/core/errors.js";
import { checkTwoWayConformance } from "../../src/testing/two-way.js";
import { GoogleEmulator } from "../google/emulator.js";
import { dayTime } from "../google/emulator-model.js";
import { account } from "../google/helpers.js";
import { googleTwoWayHarness } from "./harnesses.js";

const RUNS = Number(process.env.GOOGLE_TWO_WAY_RUNS ?? 50);
let emulator: GoogleEmulator;
beforeAll(async () => {
  emulator = await GoogleEmulator.start();
});
afterAll(async () => {
  await emulator?.close();
});

const ctx = { signal: new AbortController().signal };

describe("Google Calendar write surface", () => {
  it("base32hex ids are what Google accepts", () => {
    expect(base32hex("ds1")).toMatch(/^[a-v0-9]{5,}$/);
    expect(base32hex("f")).toBe("co");
  });

  it("insert with a client id, replay → ConflictError + applied, If-Match → 412, delete", async () => {
    emulator.reset();
    emulator.model.addCalendar("primary");
    const google = account(emulator);
    const target = google.calendarWriteTarget("primary");
    const id = target.keyFor("row-1");
    const event = { summary: "a", start: dayTime(1), end: dayTime(1, 1) };
    const entry = {
      kind: "create" as const,
      seq: 1,
      at: 0,
      localId: "row-1",
      sourcekey: id,
      data: event,
    };
    const made = await target.create(entry, ctx);
    expect(made).toMatchObject({ sourcekey: id, changeKey: expect.stringMatching(/^"/) });
    await expect(target.create(entry, ctx)).rejects.toBeInstanceOf(ConflictError);
    const remote = await target.fetch(id, ctx);
    expect(remote && target.applied(entry, remote)).toBe(true);
    emulator.model.updateEvent("primary", id, { summary: "theirs" });
    const update = {
      ...entry,
      kind: "update" as const,
      changeKey: made.changeKey,
      data: { ...event, summary: "b" },
    };
    await expect(target.update(update, ctx)).rejects.toBeInstanceOf(ConflictError);
    const now = await target.fetch(id, ctx);
    const ok = await target.update({ ...update, changeKey: now?.changeKey }, ctx);
    expect(ok.object?.data).toMatchObject({ summary: "b" });
    await expect(
      target.delete(
        {
          kind: "delete",
          seq: 3,
          at: 0,
          localId: "row-1",
          sourcekey: id,
          changeKey: now?.changeKey,
        },
        ctx,
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    await target.delete(
      { kind: "delete", seq: 3, at: 0, localId: "row-1", sourcekey: id, changeKey: ok.changeKey },
      ctx,
    );
    expect(await target.fetch(id, ctx)).toBeUndefined();
    await expect(
      target.delete({ kind: "delete", seq: 4, at: 0, localId: "row-1", sourcekey: id }, ctx),
    ).rejects.toBeInstanceOf(NotFoundError);
    await google.close();
  });
});

describe("two-way against the Google emulator", () => {
  it(`passes the two-way conformance kit (${RUNS} histories, two regressions first)`, async () => {
    await checkTwoWayConformance(googleTwoWayHarness(emulator), {
      numRuns: RUNS,
      maxSteps: 16,
      seed: process.env.TWO_WAY_SEED ? Number(process.env.TWO_WAY_SEED) : undefined,
      path: process.env.TWO_WAY_PATH,
      examples: [
        // An edit of an event deleted remotely is re-created, and the pull never drops its row
        // (the re-create's old key stays protected until the write-back).
        [
          "client-wins",
          [
            { t: "lupdate", pick: 0, label: "a" },
            { t: "rdelete", pick: 0 },
            { t: "push", at: 2, fault: "before" },
            { t: "pull" },
            { t: "rcreate", folder: 0, label: "a" },
          ],
        ],
        // The echo of the first create is forgotten once the object moved to its new key.
        [
          "client-wins",
          [
            { t: "lcreate", folder: 0, label: "a" },
            { t: "push", at: 0, fault: "before" },
            { t: "lupdate", pick: 0, label: "a" },
            { t: "rdelete", pick: 0 },
            { t: "pull" },
            { t: "lupdate", pick: 0, label: "a" },
          ],
        ],
      ],
    });
  }, 600_000);
});
