/**
 * The demo's two-way part: while `watch` runs in two-way mode over the items, a local edit of the
 * mirror reaches the server without a push call, a remote edit arrives, and both sides editing
 * one message pause the pair on a conflict until it is resolved.
 */
import type { MemoryServer } from "../../adapters/memory/index.js";
import type { SqliteMirror } from "../orchestrator/sqlite-mirror.js";
import type { WatchResult } from "../orchestrator/watch.js";
import { push } from "../two-way/push.js";
import type { WriteTarget } from "../two-way/types.js";
import type { Output } from "./output.js";

interface ItemData {
  fields: Record<string, unknown>;
  read?: boolean;
}

/** Waits for conditions that watch rounds make true; gives up (false) when the demo stops. */
export class RoundWaiter {
  readonly #waiters = new Set<() => void>();
  /** Call with each round's result (and on stop). */
  round(_r?: WatchResult): void {
    for (const w of [...this.#waiters]) w();
  }
  until(check: () => boolean, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const test = () => {
        if (signal.aborted || check()) {
          this.#waiters.delete(test);
          signal.removeEventListener("abort", test);
          resolve(!signal.aborted);
        }
      };
      this.#waiters.add(test);
      signal.addEventListener("abort", test, { once: true });
      test();
    });
  }
}

export interface DemoTwoWay {
  server: MemoryServer;
  mirror: SqliteMirror;
  target: WriteTarget;
  pair: string;
  /** The Inbox folder's sourcekey: the messages the demo edits. */
  folderKey: string;
  /** Persists the server (before any sync can see a change). */
  save(): void;
  waiter: RoundWaiter;
  /** The latest round's result. */
  last(): WatchResult | undefined;
}

const subjectOf = (data: unknown) =>
  String((data as ItemData | null)?.fields?.subject ?? "(no subject)");
/** The subject without the marks earlier demo runs added. */
const plain = (data: unknown) =>
  subjectOf(data).replace(/^(\[(edited here|edited elsewhere|ours|theirs) [^\]]*\] )+/, "");

export async function showTwoWay(d: DemoTwoWay, out: Output, signal: AbortSignal): Promise<void> {
  const { server, mirror, pair } = d;
  const rows = mirror
    .rows()
    .filter((r) => r.parentKey === d.folderKey && r.type === "item")
    .slice(0, 3);
  const [mine, theirs, both] = rows;
  if (!mine || !theirs || !both) return;
  const step = (name: string, human: string, extra: Record<string, unknown> = {}) =>
    out.emit({ event: "two-way", step: name, pair, ...extra }, human);
  const serverSubject = (key: string) => String(server.item(key).fields.subject);
  const edited = (data: unknown, subject: string): ItemData => {
    const item = data as ItemData;
    return { ...item, fields: { ...item.fields, subject } };
  };
  const stamp = new Date().toISOString().slice(11, 19);

  // 1. A local edit: the app changes its copy; the watch pushes it.
  const local = `[edited here ${stamp}] ${plain(mine.data)}`.slice(0, 120);
  mirror.edits.update(mine.id, edited(mine.data, local));
  if (!(await d.waiter.until(() => serverSubject(mine.sourcekey) === local, signal))) return;
  step(
    "local-edit",
    `two-way: a local edit reached the server (no push call): "${serverSubject(mine.sourcekey)}"`,
    { sourcekey: mine.sourcekey, subject: local },
  );

  // 2. A remote edit: another client changes the server; the watch pulls it.
  const remote = `[edited elsewhere ${stamp}] ${plain(theirs.data)}`.slice(0, 120);
  server.updateItem(theirs.sourcekey, { ...(theirs.data as ItemData).fields, subject: remote });
  d.save();
  if (
    !(await d.waiter.until(() => subjectOf(mirror.get(theirs.sourcekey)?.data) === remote, signal))
  )
    return;
  step("remote-edit", `two-way: a remote edit arrived in the mirror: "${remote}"`, {
    sourcekey: theirs.sourcekey,
    subject: remote,
  });

  // 3. Both sides edit one message before the pusher runs: the conditional write fails.
  const ours = `[ours ${stamp}] ${plain(both.data)}`.slice(0, 120);
  const other = `[theirs ${stamp}] ${plain(both.data)}`.slice(0, 120);
  server.updateItem(both.sourcekey, { ...(both.data as ItemData).fields, subject: other });
  d.save();
  mirror.edits.update(both.id, edited(both.data, ours));
  if (!(await d.waiter.until(() => d.last()?.push?.status === "paused", signal))) return;
  const conflict = d.last()?.push?.conflict;
  if (!conflict) return;
  step(
    "conflict",
    `two-way: conflict ${conflict.id} (${conflict.kind}): server has "${other}", we have "${ours}"; ${pair} pauses its pushes`,
    { id: conflict.id, kind: conflict.kind, sourcekey: both.sourcekey },
  );
  // The app (here: the demo) decides; the watch resumes pushing at once.
  await mirror.outbox.resolve(conflict.id, "local");
  if (!(await d.waiter.until(() => serverSubject(both.sourcekey) === ours, signal))) return;
  step(
    "resolved",
    `two-way: resolved (local); the server now has "${serverSubject(both.sourcekey)}"`,
    {
      id: conflict.id,
      resolution: "local",
    },
  );
}

/**
 * Before the final sync: whatever the demo's stop interrupted (an open conflict, an edit not
 * pushed yet) is resolved and pushed, so the mirror ends equal to the server.
 */
export async function settleTwoWay(d: DemoTwoWay): Promise<void> {
  for (const c of await d.mirror.outbox.conflicts(d.pair)) {
    await d.mirror.outbox.resolve(c.id, "local");
  }
  await push(d.target, d.mirror.outbox, {
    pair: d.pair,
    policy: "client-wins",
    ...d.mirror.pushCallbacks,
  });
  d.save();
}
