import { fc, test as propTest } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  ArgumentError,
  type Change,
  type ChangeSource,
  CursorStalledError,
  createSyncable,
  decodeState,
  encodeState,
  type Importer,
  ImporterError,
  type Page,
  ProtocolError,
  StateError,
  StateInvalidError,
} from "../../src/index.js";

const item = (n: number): Change => ({
  kind: "update",
  object: { sourcekey: `k${n}`, type: "item", data: { n } },
  created: true,
});

/** A backend with a fixed list of changes served `size` per page; cursor = index reached. */
function listSource(
  changes: Change[],
  size: number,
  opts: { positions?: boolean } = {},
): ChangeSource<number, number> & { fetches: number } {
  const src = {
    fetches: 0,
    async fetchPage({
      cursor,
      page,
    }: {
      cursor: number | undefined;
      page: number | undefined;
    }): Promise<Page<number, number>> {
      src.fetches++;
      const start = page ?? cursor ?? 0;
      const slice = changes
        .slice(start, start + size)
        .map((c, i) => (opts.positions ? { ...c, position: { cursor: start + i + 1 } } : c));
      const end = start + slice.length;
      return end < changes.length
        ? { changes: slice, nextPage: end }
        : { changes: slice, newCursor: end };
    },
  };
  return src;
}

const recorder = () => {
  const seen: string[] = [];
  const importer: Importer = {
    update: (o) => void seen.push(o.sourcekey),
    delete: (o) => void seen.push(`-${o.sourcekey}`),
    read: (o, r) => void seen.push(`${r ? "r" : "u"}${o.sourcekey}`),
  };
  return { seen, importer };
};

const make = (source: ChangeSource<number, number>) =>
  createSyncable({ adapter: "test", scope: "folder:x", source: source as ChangeSource });

describe("engine", () => {
  it("pages through every change in order and returns a state that resumes with nothing new", async () => {
    const changes = Array.from({ length: 7 }, (_, i) => item(i));
    const s = make(listSource(changes, 3));
    const { seen, importer } = recorder();
    const checkpoints: string[] = [];
    const out = await s.exportChanges(importer, undefined, {
      onCheckpoint: (c) => void checkpoints.push(c),
    });
    expect(seen).toEqual(changes.map((c) => c.object.sourcekey));
    expect(out).toMatchObject({ complete: true, fullSync: true, pages: 3, counts: { update: 7 } });
    expect(checkpoints).toHaveLength(2);
    expect(decodeState(checkpoints[0] as string, "test", "folder:x")).toMatchObject({
      page: 3,
      fullSync: true,
    });
    const again = recorder();
    await s.sync(again.importer, out.state);
    expect(again.seen).toEqual([]);
  });

  it("hands the importer the flags the change carries, as frozen objects one importer can't alter for the next", async () => {
    const changes: Change[] = [
      item(0),
      { kind: "update", object: { sourcekey: "k1", type: "item", data: { n: 1 } }, created: false },
      { kind: "delete", object: { sourcekey: "k2", type: "item" }, soft: true },
      { kind: "delete", object: { sourcekey: "k3", type: "item" }, soft: false },
      item(4),
    ];
    const flags: object[] = [];
    const importer: Importer = {
      update(_obj, f) {
        flags.push(f);
        expect(() => Object.assign(f, { created: !f.created })).toThrow(TypeError);
      },
      delete(_obj, f) {
        flags.push(f);
        expect(() => Object.assign(f, { soft: !f.soft })).toThrow(TypeError);
      },
    };
    await make(listSource(changes, 2)).sync(importer);
    expect(flags).toEqual([
      { created: true },
      { created: false },
      { soft: true },
      { soft: false },
      { created: true },
    ]);
    expect(flags.every((f) => Object.isFrozen(f))).toBe(true);
  });

  it("an importer that throws rejects with ImporterError carrying the change; checkpoints cover only imported pages", async () => {
    const changes = Array.from({ length: 6 }, (_, i) => item(i));
    const s = make(listSource(changes, 2));
    const checkpoints: string[] = [];
    const importer: Importer = {
      update: (o) => {
        if (o.sourcekey === "k3") throw new Error("disk full");
      },
    };
    const error = await s
      .sync(importer, undefined, { onCheckpoint: (c) => void checkpoints.push(c) })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ImporterError);
    expect(error.change.object.sourcekey).toBe("k3");
    expect(error.message).toContain("disk full");
    expect(checkpoints).toHaveLength(1);
    const { seen, importer: ok } = recorder();
    await s.sync(ok, checkpoints.at(-1));
    expect(seen).toEqual(["k2", "k3", "k4", "k5"]);
  });

  it("async importer rejections are ImporterErrors too", async () => {
    const s = make(listSource([item(1)], 5));
    await expect(
      s.sync({ update: async () => Promise.reject(new Error("nope")) }),
    ).rejects.toBeInstanceOf(ImporterError);
  });

  propTest.prop([
    fc.integer({ min: 1, max: 40 }),
    fc.integer({ min: 1, max: 7 }),
    fc.integer({ min: 1, max: 9 }),
    fc.boolean(),
  ])(
    "maxChanges slices resume exactly where they stopped (with and without positions)",
    async (n, pageSize, maxChanges, positions) => {
      const changes = Array.from({ length: n }, (_, i) => item(i));
      const s = make(listSource(changes, pageSize, { positions }));
      const { seen, importer } = recorder();
      let state: string | undefined;
      for (let guard = 0; guard < 1000; guard++) {
        const out = await s.exportChanges(importer, state, { maxChanges });
        const delivered = out.counts.update;
        expect(delivered).toBeLessThanOrEqual(maxChanges);
        state = out.state;
        if (out.complete) break;
      }
      expect(seen).toEqual(changes.map((c) => c.object.sourcekey));
    },
  );

  it("aborting rejects with the signal's reason and no further importer calls", async () => {
    const s = make(
      listSource(
        Array.from({ length: 5 }, (_, i) => item(i)),
        5,
      ),
    );
    const controller = new AbortController();
    const seen: string[] = [];
    const reason = new Error("stop");
    const run = s.sync(
      {
        update: (o) => {
          seen.push(o.sourcekey);
          if (seen.length === 2) controller.abort(reason);
        },
      },
      undefined,
      { signal: controller.signal },
    );
    await expect(run).rejects.toBe(reason);
    expect(seen).toEqual(["k0", "k1"]);
    await expect(s.sync({}, undefined, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it("a page token that does not advance is a CursorStalledError, not an endless loop", async () => {
    const s = createSyncable({
      adapter: "test",
      scope: "x",
      source: { fetchPage: async () => ({ changes: [], nextPage: "same" }) },
    });
    await expect(s.sync({})).rejects.toBeInstanceOf(CursorStalledError);
  });

  it("a last page without a cursor, or a malformed page, is a ProtocolError", async () => {
    const noCursor = createSyncable({
      adapter: "test",
      scope: "x",
      source: { fetchPage: async () => ({ changes: [] }) },
    });
    await expect(noCursor.sync({})).rejects.toBeInstanceOf(ProtocolError);
    const junk = createSyncable({
      adapter: "test",
      scope: "x",
      source: { fetchPage: async () => ({ nope: 1 }) as unknown as Page },
    });
    await expect(junk.sync({})).rejects.toBeInstanceOf(ProtocolError);
  });

  it("StateInvalidError from the backend passes through untouched", async () => {
    const s = createSyncable({
      adapter: "test",
      scope: "x",
      source: {
        fetchPage: async () => {
          throw new StateInvalidError("410 Gone");
        },
      },
    });
    await expect(
      s.sync({}, encodeState({ adapter: "test", scope: "x", cursor: 1 })),
    ).rejects.toBeInstanceOf(StateInvalidError);
  });

  it("moves become delete + create unless the importer opts into moved", async () => {
    const move: Change = {
      kind: "move",
      object: { sourcekey: "m", type: "item", parentKey: "b", data: 1 },
      fromParentKey: "a",
    };
    const s = createSyncable({
      adapter: "t",
      scope: "x",
      source: { fetchPage: async () => ({ changes: [move], newCursor: 1 }) },
    });
    const calls: unknown[] = [];
    await s.sync({
      delete: (o, f) => void calls.push(["delete", o, f]),
      update: (o, f) => void calls.push(["update", o.parentKey, f]),
    });
    expect(calls).toEqual([
      ["delete", { sourcekey: "m", type: "item", parentKey: "a" }, { soft: false }],
      ["update", "b", { created: true }],
    ]);
    const moved: unknown[] = [];
    await s.sync({
      moved: (o, f) => void moved.push([o.sourcekey, f]),
      delete: () => moved.push("no"),
    });
    expect(moved).toEqual([["m", { fromParentKey: "a" }]]);
  });

  it("windows: unsupported keys are ArgumentErrors, the window is kept in the state, a different one is a StateError", async () => {
    const source: ChangeSource = {
      fetchPage: async (req) => ({ changes: [], newCursor: JSON.stringify(req.window ?? null) }),
    };
    const s = createSyncable({ adapter: "t", scope: "x", source, windowKeys: ["daysWithin"] });
    await expect(
      s.sync({}, undefined, { window: { timeMin: "2024-01-01T00:00:00Z" } }),
    ).rejects.toBeInstanceOf(ArgumentError);
    await expect(s.sync({}, undefined, { window: { daysWithin: 0 } })).rejects.toBeInstanceOf(
      ArgumentError,
    );
    const state = await s.sync({}, undefined, { window: { daysWithin: 30 } });
    expect(decodeState(state, "t", "x").window).toEqual({ daysWithin: 30 });
    let seenWindow: unknown;
    const s2 = createSyncable({
      adapter: "t",
      scope: "x",
      source: {
        fetchPage: async (req) => {
          seenWindow = req.window;
          return { changes: [], newCursor: "c" };
        },
      },
      windowKeys: ["daysWithin"],
    });
    await s2.sync({}, state);
    expect(seenWindow).toEqual({ daysWithin: 30 });
    await expect(s.sync({}, state, { window: { daysWithin: 7 } })).rejects.toBeInstanceOf(
      StateError,
    );
  });

  it("rejects bad arguments with ArgumentError before touching the backend", async () => {
    const src = listSource([item(1)], 1);
    const s = make(src);
    await expect(s.sync(null as unknown as Importer)).rejects.toBeInstanceOf(ArgumentError);
    await expect(s.sync({}, undefined, { maxChanges: 0 })).rejects.toBeInstanceOf(ArgumentError);
    expect(src.fetches).toBe(0);
  });

  it("a cursor that fails the adapter's schema is a StateError naming the field", async () => {
    const { z } = await import("zod");
    const s = createSyncable({
      adapter: "t",
      scope: "x",
      source: {
        fetchPage: async () => ({ changes: [], newCursor: { token: "a" } }),
        cursorSchema: z.object({ token: z.string() }),
      },
    });
    const bad = encodeState({ adapter: "t", scope: "x", cursor: { token: 5 } });
    await expect(s.sync({}, bad)).rejects.toThrow(/cursor\.token/);
  });
});
