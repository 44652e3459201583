/**
 * Where `sync` / `watch` put the changes: a SQLite mirror file, or NDJSON on stdout (`-`).
 */
import type { BatchCallbacks } from "../orchestrator/batch.js";
import { createSqliteMirror } from "../orchestrator/sqlite-mirror.js";

export interface ChangeSink {
  callbacks: BatchCallbacks;
  close(): void;
}

export function openSink(out: string | undefined, source: string): ChangeSink {
  if (out === undefined || out === "-") {
    const line = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
    const print = out === "-";
    return {
      callbacks: {
        onUpdated(records) {
          if (print) for (const r of records) line({ event: "change", op: "update", source, ...r });
        },
        onDeleted(_keys, objects) {
          if (print) for (const o of objects) line({ event: "change", op: "delete", source, ...o });
        },
        onRead(changes) {
          if (print) for (const c of changes) line({ event: "change", op: "read", source, ...c });
        },
        onReset() {
          if (print) line({ event: "reset", source });
        },
      },
      close() {},
    };
  }
  const mirror = createSqliteMirror(out, { source });
  return { callbacks: mirror.callbacks, close: () => mirror.close() };
}
