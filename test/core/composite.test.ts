import { fc, test as propTest } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { createMemoryServer, type MemoryFolder } from "../../adapters/memory/index.js";
import {
  type Change,
  type ChangeSource,
  compositeSource,
  createSyncable,
  diffSnapshot,
  NotFoundError,
  StateInvalidError,
  snapshotSource,
} from "../../src/index.js";
import { diffMirror, type Mirror, mirrorImporter } from "../../src/testing/index.js";

/** A composite over memory folders, each child synced through its own (public) state. */
function folderChild(folder: MemoryFolder): ChangeSource {
  // Wrap a whole child sync as one page: the child's own state string is its cursor.
  return {
    async fetchPage({ cursor }) {
      const changes: import("../../src/index.js").Change[] = [];
      const state = await folder.sync(
        {
          update: (object, f) => void changes.push({ kind: "update", object, created: f.created }),
          delete: (object, f) => void changes.push({ kind: "delete", object, soft: f.soft }),
          read: (object, isRead) => void changes.push({ kind: "read", object, isRead }),
        },
        cursor as string | undefined,
      );
      return { changes, newCursor: state };
    },
  };
}

describe("composite source", () => {
  propTest.prop([
    fc.array(fc.tuple(fc.nat(3), fc.nat(9), fc.boolean()), { maxLength: 40 }),
    fc.integer({ min: 1, max: 5 }),
  ])(
    "server-wide sync over per-folder cursors equals the server's truth, with maxChanges slices",
    async (ops, maxChanges) => {
      const server = createMemoryServer({ pageSize: 2 });
      const store = server.createStore("a");
      const folders = new Map<string, MemoryFolder>();
      for (const name of ["one", "two"]) {
        const f = store.createFolder({ name, kind: "mail" });
        folders.set(f.sourcekey, f);
      }
      const composite = createSyncable({
        adapter: "composite-test",
        scope: "server",
        source: compositeSource({
          name: "test",
          listChildren: async () => [...folders.keys()],
          child: (key) => {
            const f = folders.get(key);
            if (!f) throw new NotFoundError(key);
            return folderChild(f);
          },
        }),
      });
      const mirror: Mirror = new Map();
      const importer = mirrorImporter(mirror, {
        project: (o) => (o.data as { fields: unknown }).fields,
        readOf: (o) => (o.data as { read: boolean }).read,
      });
      let state: string | undefined;
      const truth = () =>
        new Map(
          server
            .allItems()
            .map((i) => [
              i.sourcekey,
              { type: "item" as const, parentKey: i.parentKey, data: i.fields, read: i.read },
            ]),
        );
      for (const [kind, n, flag] of ops) {
        const keys = [...folders.keys()];
        const items = server.allItems();
        if (kind === 0 && keys.length)
          folders.get(keys[n % keys.length] as string)?.createItem({ n });
        if (kind === 1 && items.length)
          server.markRead((items[n % items.length] as { sourcekey: string }).sourcekey, flag);
        if (kind === 2 && items.length)
          server.deleteItem((items[n % items.length] as { sourcekey: string }).sourcekey);
        if (kind === 3 && flag && keys.length > 1) {
          const gone = keys[n % keys.length] as string;
          store.deleteFolder(gone);
          folders.delete(gone);
        } else if (kind === 3) {
          const f = store.createFolder({ name: `f${n}`, kind: "mail" });
          folders.set(f.sourcekey, f);
        }
        for (let guard = 0; ; guard++) {
          const out = await composite.exportChanges(importer, state, { maxChanges });
          state = out.state;
          if (out.complete) break;
          expect(guard).toBeLessThan(1000);
        }
        expect(diffMirror(mirror, truth())).toBeUndefined();
      }
    },
  );

  it("a child whose cursor became invalid is reported as a folder delete and fully re-synced; siblings keep theirs", async () => {
    let expired = false;
    const calls: string[] = [];
    const child = (key: string): ChangeSource => ({
      async fetchPage({ cursor }) {
        calls.push(`${key}:${cursor ?? "full"}`);
        if (key === "b" && expired && cursor !== undefined) throw new StateInvalidError("expired");
        return { changes: [], newCursor: `${key}-c` };
      },
    });
    const s = createSyncable({
      adapter: "t",
      scope: "server",
      source: compositeSource({ name: "t", listChildren: async () => ["a", "b"], child }),
    });
    const state = await s.sync({});
    expired = true;
    calls.length = 0;
    const deleted: string[] = [];
    await s.sync({ delete: (o) => void deleted.push(`${o.type}:${o.sourcekey}`) }, state);
    expect(deleted).toEqual(["folder:b"]);
    expect(calls).toEqual(["a:a-c", "b:b-c", "b:full"]);
  });
  it("verify asks the round's later children about keys the resumed page's child does not hold", async () => {
    // A batch's marks cover every page it crossed: here x came from b's page, y is gone.
    const held: Record<string, string[]> = { a: [], b: ["x"], c: [] };
    const asked: string[] = [];
    const child = (key: string): ChangeSource => ({
      fetchPage: async () => ({ changes: [], newCursor: `${key}-c` }),
      verify: async (keys) => {
        asked.push(`${key}:${keys.join(",")}`);
        return keys.map(
          (sourcekey): Change =>
            held[key]?.includes(sourcekey)
              ? {
                  kind: "update",
                  object: { sourcekey, type: "item", parentKey: key, data: {} },
                  created: false,
                }
              : {
                  kind: "delete",
                  object: { sourcekey, type: "item", parentKey: key },
                  soft: false,
                },
        );
      },
    });
    const source = compositeSource({ name: "t", listChildren: async () => ["a", "b", "c"], child });
    const verified = await source.verify?.(["x", "y"], {
      cursor: { a: "a-c", b: "b-c", c: "c-c" },
      page: { todo: ["a", "b", "c"] },
      fullSync: false,
      window: undefined,
      signal: new AbortController().signal,
    });
    expect(verified?.map((c) => `${c.kind}:${c.object.sourcekey}:${c.object.parentKey}`)).toEqual([
      "update:x:b",
      "delete:y:a",
    ]);
    expect(asked).toEqual(["a:x,y", "b:x,y", "c:y"]);
  });
});

describe("snapshot source", () => {
  it("diffs listings into creates, updates and deletes", async () => {
    const { changes, snapshot } = diffSnapshot(
      { a: "1", b: "1", c: "1" },
      [
        { sourcekey: "a", type: "folder", changeKey: "1", data: {} },
        { sourcekey: "b", type: "folder", changeKey: "2", data: {} },
        { sourcekey: "d", type: "folder", changeKey: "1", data: {} },
      ],
      "folder",
    );
    expect(
      changes.map(
        (c) => `${c.kind}:${c.object.sourcekey}${c.kind === "update" ? `:${c.created}` : ""}`,
      ),
    ).toEqual(["update:b:false", "update:d:true", "delete:c"]);
    expect(snapshot).toEqual({ a: "1", b: "2", d: "1" });
  });

  it("syncs incrementally through the engine", async () => {
    let listing = [{ sourcekey: "x", type: "folder" as const, changeKey: "1", data: {} }];
    const s = createSyncable({
      adapter: "t",
      scope: "h",
      source: snapshotSource({ type: "folder", list: async () => listing }),
    });
    const seen: string[] = [];
    const imp = {
      update: (o: { sourcekey: string }) => void seen.push(`+${o.sourcekey}`),
      delete: (o: { sourcekey: string }) => void seen.push(`-${o.sourcekey}`),
    };
    let state = await s.sync(imp);
    listing = [{ sourcekey: "y", type: "folder", changeKey: "1", data: {} }];
    state = await s.sync(imp, state);
    await s.sync(imp, state);
    expect(seen).toEqual(["+x", "+y", "-x"]);
  });
});
