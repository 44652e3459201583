/**
 * The row outboxes (memory, SQLite; PostgreSQL in postgres-outbox.test.ts) hold exactly what the
 * document form holds after any sequence of commits, a commit that throws leaves nothing behind,
 * and a second handle (another process) reads the same document from the rows.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createMemoryServer } from "../../adapters/memory/index.js";
import { memoryWriteTarget } from "../../adapters/memory/memory-write.js";
import { createMemoryStateStore } from "../../src/stores/memory.js";
import { createSqliteStateStore } from "../../src/stores/sqlite.js";
import type { StateStore } from "../../src/stores/types.js";
import { createOutbox, type Outbox } from "../../src/two-way/outbox.js";
import { push } from "../../src/two-way/push.js";
import type { Conflict } from "../../src/two-way/types.js";
import { applyOp, outboxOpArbitrary } from "./outbox-ops.js";

const dir = mkdtempSync(join(tmpdir(), "deltasync-outbox-rows-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The document form: a store without rows. */
function documentStore(): StateStore {
  const { outboxRows: _rows, ...store } = createMemoryStateStore();
  return store;
}

let n = 0;
const rowForms: [string, () => [StateStore, () => StateStore]][] = [
  [
    "memory",
    () => {
      const s = createMemoryStateStore();
      return [s, () => s];
    },
  ],
  [
    "SQLite",
    () => {
      const file = join(dir, `r${++n}.sqlite`);
      return [createSqliteStateStore(file), () => createSqliteStateStore(file)];
    },
  ],
];

describe.each(rowForms)("the %s row outbox", (_name, open) => {
  it("holds what the document form holds, through failed commits and a second handle", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(outboxOpArbitrary, { maxLength: 40 }), async (ops) => {
        const [store, reopen] = open();
        const now = () => 1;
        const rows = createOutbox(store, { now });
        const docs = createOutbox(documentStore(), { now });
        for (const op of ops) {
          const a = await applyOp(rows, op);
          const b = await applyOp(docs, op);
          expect(a).toEqual(b);
          expect(await rows.read("p")).toEqual(await docs.read("p"));
        }
        const again: Outbox = createOutbox(reopen());
        expect(await again.read("p")).toEqual(await docs.read("p"));
        expect(await again.pairs()).toEqual(await rows.pairs());
        await rows.close();
        await again.close();
      }),
      { numRuns: 60 },
    );
  });

  it("a conflict emitted as open stays open when it is resolved later", async () => {
    // The stored conflict changes (resolved, applied); the one handed out must not.
    const server = createMemoryServer();
    const folder = server.createStore("a").createFolder({ name: "F", kind: "mail" });
    const key = folder.createItem({ s: "base" });
    const base = server.item(key).changeKey;
    server.updateItem(key, { s: "theirs" });
    const [store] = open();
    const outbox = createOutbox(store);
    const events: Conflict[] = [];
    outbox.conflictEvents().subscribe((c) => events.push(c));
    await outbox.record("p", {
      kind: "update",
      localId: "x",
      sourcekey: key,
      changeKey: base,
      data: { fields: { s: "mine" } },
    });
    const target = memoryWriteTarget(server, folder.sourcekey);
    const paused = await push(target, outbox, { pair: "p" });
    expect(paused.status).toBe("paused");
    await outbox.resolve(paused.conflict?.id as string, "local");
    expect(await push(target, outbox, { pair: "p" })).toMatchObject({ status: "done", pushed: 1 });
    expect(events.map((c) => c.status)).toEqual(["open", "resolved"]);
    expect(paused.conflict?.status).toBe("open");
    expect(server.item(key).fields).toEqual({ s: "mine" });
    await outbox.close();
  });
});
