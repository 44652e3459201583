/**
 * The two-way conformance kit: random histories of concurrent local and remote edits, pulls,
 * full syncs, restarts, and pushes that fail or crash at every step (before the write, after the
 * server accepted it but before the outbox advanced, in the write-back), under a conflict
 * policy. After quiescence: the app's copy equals the server, every local edit is on the server
 * or accounted for by a `Conflict` record (or a later remote edit of the object), no create was
 * made twice, no pushed version came back as a remote edit, and no conflict arose without a
 * remote change.
 */
import fc from "fast-check";
import { DeltaSyncError, PushBlockedError, TransientError } from "../core/errors.js";
import type { SyncObject } from "../core/types.js";
import { runSync } from "../orchestrator/run-sync.js";
import { createMemoryStateStore } from "../stores/memory.js";
import type { StateStore } from "../stores/types.js";
import { stableJson } from "../two-way/log.js";
import { createOutbox, type Outbox } from "../two-way/outbox.js";
import { type PushOptions, push } from "../two-way/push.js";
import { settlePushed } from "../two-way/settle.js";
import type { ConflictPolicy, Resolution, WriteTarget } from "../two-way/types.js";
import { replayParameters } from "./conformance.js";
import { type CopyRow, LocalCopy } from "./two-way-copy.js";
import type { TwoWayBackend, TwoWayHarness } from "./two-way-harness.js";

/** The conflict policies a history may run under (`merge`: a merge function writing label `m`). */
export type TwoWayPolicy = "ask" | "client-wins" | "server-wins" | "merge";

export interface TwoWayConformanceOptions {
  /** Random histories to run. */
  numRuns: number;
  /** Replays one failing run (with `path`). */
  seed?: number;
  /** fast-check's path of a failing run, to replay it exactly. */
  path?: string;
  /** Longest history, in steps (default 24). */
  maxSteps?: number;
  /** Policies to draw from (default all four). */
  policies?: readonly TwoWayPolicy[];
  /** Shrink a failing history to a minimal one (slow on real servers; default false). */
  shrink?: boolean;
  /** Called after each history, e.g. to log progress. */
  onHistory?(index: number): void;
  /** Histories to run first, as given (regressions, a backend's known quirks). */
  examples?: readonly (readonly [TwoWayPolicy, TwoWayStep[]])[];
}

/** A step of a history. `pick` chooses a row / object modulo how many there are. */
export type TwoWayStep =
  | { t: "lcreate"; folder: number; label: string }
  | { t: "lupdate"; pick: number; label: string }
  | { t: "ldelete"; pick: number }
  | { t: "lread"; pick: number; read: boolean }
  | { t: "lmove"; pick: number; folder: number }
  | { t: "rcreate"; folder: number; label: string }
  | { t: "rupdate"; pick: number; label: string }
  | { t: "rdelete"; pick: number }
  | { t: "rread"; pick: number; read: boolean }
  | { t: "rmove"; pick: number; folder: number }
  /**
   * A push whose `at`-th write (1-based; 0: none) fails: `before` the write, `after` the
   * server accepted it (the outbox has not advanced), in the `writeback` (`onPushed`), or with a
   * `transient` error the pusher retries.
   */
  | { t: "push"; at: number; fault: "before" | "after" | "writeback" | "transient" }
  | { t: "pull" }
  /** A full sync from nothing over the existing copy (the saved state was lost). */
  | { t: "full" }
  /** A new process: the outbox is reopened over the same store. */
  | { t: "restart" }
  /** Resolves every open conflict: 0 local, 1 remote, 2 merged. */
  | { t: "resolve"; choice: number };

/** A two-way conformance failure: names the seed, the path, the history and the first divergence. */
export class TwoWayConformanceError extends DeltaSyncError {
  override readonly code = "ERR_TWO_WAY_CONFORMANCE";
  constructor(
    message: string,
    readonly seed: number,
    readonly path: string | undefined,
    readonly policy: TwoWayPolicy | undefined,
    readonly history: readonly TwoWayStep[] | undefined,
    readonly divergence: string,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

/** A violated invariant inside one history. */
class Divergence extends Error {}

class Crash extends Error {}

function stepArbitrary(harness: TwoWayHarness): fc.Arbitrary<TwoWayStep> {
  const label = fc.constantFrom("a", "b", "c");
  const pick = fc.nat(20);
  const folder = fc.nat(7);
  const w = (weight: number, arbitrary: fc.Arbitrary<TwoWayStep>) => ({ weight, arbitrary });
  const c = <T extends TwoWayStep["t"]>(t: T) => fc.constant(t);
  const steps = [
    w(2, fc.record({ t: c("lcreate"), folder, label })),
    w(3, fc.record({ t: c("lupdate"), pick, label })),
    w(1, fc.record({ t: c("ldelete"), pick })),
    w(1, fc.record({ t: c("rcreate"), folder, label })),
    w(2, fc.record({ t: c("rupdate"), pick, label })),
    w(1, fc.record({ t: c("rdelete"), pick })),
    w(
      3,
      fc.record({
        t: c("push"),
        at: fc.nat(4),
        fault: fc.constantFrom(
          "before" as const,
          "after" as const,
          "writeback" as const,
          "transient" as const,
        ),
      }),
    ),
    w(2, fc.record({ t: c("pull") })),
    w(1, fc.record({ t: c("full") })),
    w(1, fc.record({ t: c("restart") })),
    w(1, fc.record({ t: c("resolve"), choice: fc.nat(2) })),
  ];
  if (harness.flags) {
    steps.push(w(1, fc.record({ t: c("lread"), pick, read: fc.boolean() })));
    steps.push(w(1, fc.record({ t: c("rread"), pick, read: fc.boolean() })));
  }
  if (harness.moves) {
    steps.push(w(1, fc.record({ t: c("lmove"), pick, folder })));
    steps.push(w(1, fc.record({ t: c("rmove"), pick, folder })));
  }
  return fc.oneof(...steps);
}

/**
 * Runs `numRuns` random two-way histories against the harness's backend; throws a
 * `TwoWayConformanceError` naming the seed and path to replay, the history, and the first
 * divergence. Moves and read flags are exercised when the harness declares them.
 *
 * @example
 * await checkTwoWayConformance(memoryTwoWayHarness(), { numRuns: 1000 });
 * // replay a failure: { numRuns: 1, seed: 123, path: "4:2" }
 */
export async function checkTwoWayConformance(
  harness: TwoWayHarness,
  options: TwoWayConformanceOptions,
): Promise<void> {
  const policies = options.policies ?? (["ask", "client-wins", "server-wins", "merge"] as const);
  const history = fc.array(stepArbitrary(harness), {
    minLength: 1,
    maxLength: options.maxSteps ?? 24,
  });
  let index = 0;
  const details = await fc.check(
    fc.asyncProperty(fc.constantFrom(...policies), history, async (policy, steps) => {
      try {
        await runHistory(harness, policy, steps);
      } finally {
        options.onHistory?.(index++);
      }
    }),
    {
      numRuns: options.numRuns,
      ...replayParameters(options),
      endOnFailure: !options.shrink,
      examples: options.examples?.map(([p, steps]) => [p, steps]),
    },
  );
  if (!details.failed) return;
  const [policy, steps] = (details.counterexample ?? []) as [TwoWayPolicy?, TwoWayStep[]?];
  const error = details.errorInstance;
  const divergence = error instanceof Error ? error.message : String(error);
  const path = details.counterexamplePath ?? undefined;
  const lines = (steps ?? []).map((s, i) => `  ${i}: ${stableJson(s)}`).join("\n");
  throw new TwoWayConformanceError(
    `${harness.name}: two-way conformance failed on history ${details.numRuns} of ${options.numRuns}` +
      ` (replay with { seed: ${details.seed}, path: ${JSON.stringify(path)} })\n` +
      `policy: ${policy}\nhistory:\n${lines}\nfirst divergence: ${divergence}`,
    details.seed,
    path,
    policy,
    steps,
    divergence,
    error,
  );
}

const PAIR = "kit";
const PULL_KEY = "kit:pull";

/** One history against a fresh backend. */
async function runHistory(
  harness: TwoWayHarness,
  policyName: TwoWayPolicy,
  steps: TwoWayStep[],
): Promise<void> {
  const backend = await harness.setup();
  try {
    await new History(harness, backend, policyName).run(steps);
  } finally {
    await backend.teardown();
  }
}

interface Wish {
  i: number;
  sourcekey: string;
  want: string | boolean | null;
}

class History {
  store!: StateStore;
  outbox!: Outbox;
  copy!: LocalCopy;
  readonly policy: ConflictPolicy;
  readonly same: (a: unknown, b: unknown) => boolean;
  readonly readOf: (obj: SyncObject) => boolean | undefined;
  /** The step being run, for messages. */
  where = "the first pull";
  /** The last local wish per local id: content (label, null: deleted), read flag, folder. */
  readonly wishes = { data: new Map<string, Wish>(), read: new Map<string, Wish>() };
  readonly moveWishes = new Map<string, Wish>();
  /** Step index of the last remote edit, by sourcekey. */
  readonly remoteAt = new Map<string, number>();
  /** Every sourcekey a local create of each local id may live under. */
  readonly createKeys = new Map<string, Set<string>>();

  constructor(
    readonly harness: TwoWayHarness,
    readonly backend: TwoWayBackend,
    policyName: TwoWayPolicy,
  ) {
    this.same = harness.same ?? ((a, b) => stableJson(a) === stableJson(b));
    this.readOf =
      harness.readOf ??
      ((obj) => {
        const r = (obj.data as { read?: unknown } | null)?.read;
        return typeof r === "boolean" ? r : undefined;
      });
    this.policy =
      policyName === "merge"
        ? (c) => ({
            merged: harness.localData(
              "m",
              c.remote?.data ?? ("data" in c.entry ? c.entry.data : undefined),
              {
                localId: c.entry.localId,
                folder: backend.folders[0] as string,
              },
            ),
          })
        : policyName;
  }

  fail(what: string): never {
    throw new Divergence(`at ${this.where}: ${what}`);
  }

  get target(): WriteTarget {
    return this.backend.target;
  }

  options(extra: Partial<PushOptions> = {}): PushOptions {
    return { pair: PAIR, policy: this.policy, retry: false, ...this.copy.callbacks(), ...extra };
  }

  async pull(): Promise<void> {
    await this.backend.settle?.();
    await runSync(this.backend.syncable, {
      importer: this.copy.importer(),
      store: this.store,
      key: PULL_KEY,
      retry: false,
    });
    await settlePushed(this.target, this.outbox, { pair: PAIR, ...this.copy.callbacks() });
    // A pull never clobbers a local edit that is still pending.
    const pending = await this.outbox.pending(PAIR);
    for (const id of new Set(pending.map((e) => e.localId))) {
      const mine = pending.filter((e) => e.localId === id);
      const last = mine.at(-1);
      const edit = mine.filter((e) => e.kind === "update" || e.kind === "create").at(-1);
      const row = this.copy.rows.get(id);
      if (last?.kind === "delete" && row) this.fail(`the pull brought back ${id}, deleted locally`);
      if (edit && !edit.merged && last?.kind !== "delete" && "data" in edit) {
        const want = this.harness.labelOf(edit.data);
        const have = row && this.harness.labelOf(row.data);
        if (want !== have)
          this.fail(`the pull overwrote the pending edit of ${id}: has ${have}, pending ${want}`);
      }
    }
  }

  noteKeys(localId: string, sourcekey: string): void {
    const set = this.createKeys.get(localId) ?? new Set<string>();
    set.add(sourcekey);
    this.createKeys.set(localId, set);
  }

  /** Records where pending creates (re-creates included) may land. */
  async noteCreates(): Promise<void> {
    for (const e of await this.outbox.pending(PAIR)) {
      if (e.kind === "create") this.noteKeys(e.localId, e.sourcekey);
    }
  }

  faulty(at: number, fault: "before" | "after" | "transient"): WriteTarget {
    let n = 0;
    const wrap =
      <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      async (...a: A): Promise<R> => {
        const hit = ++n === at;
        if (hit && fault === "before") throw new Crash("crash before the write");
        if (hit && fault === "transient") throw new TransientError("injected transient failure");
        const r = await fn(...a);
        if (hit) throw new Crash("crash after the server's write");
        return r;
      };
    const t = this.target;
    return {
      ...t,
      create: wrap(t.create.bind(t)),
      update: wrap(t.update.bind(t)),
      delete: wrap(t.delete.bind(t)),
      ...(t.move ? { move: wrap(t.move.bind(t)) } : {}),
      ...(t.read ? { read: wrap(t.read.bind(t)) } : {}),
    };
  }

  async openOutbox(): Promise<void> {
    this.outbox = createOutbox(this.store);
  }

  async run(steps: TwoWayStep[]): Promise<void> {
    const { harness, backend } = this;
    this.store = (await harness.store?.()) ?? createMemoryStateStore();
    await this.openOutbox();
    this.copy = new LocalCopy(() => this.outbox, PAIR, this.target.keyFor, this.readOf);
    const folders = backend.folders;
    if (folders.length === 0) throw new Divergence(`${harness.name}: the backend has no folders`);
    const folderOf = (n: number) => folders[n % folders.length] as string;
    await this.pull();

    for (const [i, s] of steps.entries()) {
      this.where = `step ${i} ${stableJson(s)}`;
      const rows = [...this.copy.rows.values()].sort((a, b) => (a.localId < b.localId ? -1 : 1));
      const row: CopyRow | undefined =
        "pick" in s ? rows[s.pick % Math.max(1, rows.length)] : undefined;
      const keys = "pick" in s && s.t.startsWith("r") ? (await backend.list()).sort() : [];
      const key = keys[("pick" in s ? s.pick : 0) % Math.max(1, keys.length)];
      const wish = (map: Map<string, Wish>, r: CopyRow, want: Wish["want"]) =>
        map.set(r.localId, { i, sourcekey: r.sourcekey, want });
      const touch = (k: string) => {
        this.remoteAt.set(k, i);
        this.copy.remoteTouched(k);
      };
      switch (s.t) {
        case "lcreate": {
          const folder = folderOf(s.folder);
          const localId = await this.copy.create(folder, (id) =>
            harness.localData(s.label, undefined, { localId: id, folder }),
          );
          this.noteKeys(localId, this.target.keyFor(localId));
          const created = this.copy.rows.get(localId) as CopyRow;
          wish(this.wishes.data, created, s.label);
          break;
        }
        case "lupdate":
          if (!row) break;
          await this.copy.update(
            row,
            harness.localData(s.label, row.data, {
              localId: row.localId,
              folder: row.parentKey ?? folderOf(0),
            }),
          );
          wish(this.wishes.data, row, s.label);
          break;
        case "ldelete":
          if (!row) break;
          wish(this.wishes.data, row, null);
          await this.copy.remove(row);
          break;
        case "lread":
          if (!row) break;
          wish(this.wishes.read, row, s.read);
          await this.copy.markRead(row, s.read);
          break;
        case "lmove":
          if (!row) break;
          wish(this.moveWishes, row, folderOf(s.folder));
          await this.copy.move(row, folderOf(s.folder));
          break;
        case "rcreate":
          await backend.remote.create(s.label, folderOf(s.folder));
          break;
        case "rupdate":
          if (!key) break;
          touch(key);
          await backend.remote.update(key, s.label);
          break;
        case "rdelete":
          if (!key) break;
          touch(key);
          await backend.remote.delete(key);
          break;
        case "rread":
          if (!key || !backend.remote.setRead) break;
          touch(key);
          await backend.remote.setRead(key, s.read);
          break;
        case "rmove":
          if (!key || !backend.remote.move) break;
          touch(key);
          await backend.remote.move(key, folderOf(s.folder));
          break;
        case "push":
          await this.push(s.at, s.fault);
          break;
        case "pull":
          await this.pull();
          break;
        case "full":
          await this.store.delete(PULL_KEY);
          await this.pull();
          break;
        case "restart":
          await this.openOutbox();
          break;
        case "resolve": {
          for (const c of await this.outbox.conflicts(PAIR)) {
            const resolution: Resolution =
              s.choice === 0
                ? "local"
                : s.choice === 1
                  ? "remote"
                  : {
                      merged: harness.localData(
                        "m",
                        c.remote?.data ?? ("data" in c.entry ? c.entry.data : undefined),
                        { localId: c.entry.localId, folder: folderOf(0) },
                      ),
                    };
            await this.outbox.resolve(c.id, resolution);
          }
          break;
        }
      }
    }
    await this.quiesce();
    await this.check();
  }

  async push(at: number, fault: "before" | "after" | "writeback" | "transient"): Promise<void> {
    await this.noteCreates();
    let n = 0;
    const callbacks = this.copy.callbacks();
    const extra: Partial<PushOptions> =
      fault === "writeback"
        ? {
            onPushed: (e, r, info) => {
              if (++n === at) throw new Crash("crash in the write-back");
              return callbacks.onPushed?.(e, r, info);
            },
          }
        : fault === "transient"
          ? { retry: { retries: 2, minDelayMs: 0, maxDelayMs: 0 } }
          : {};
    const target = fault === "writeback" ? this.target : this.faulty(at, fault);
    try {
      await push(target, this.outbox, this.options(extra));
    } catch (error) {
      const crashed =
        error instanceof Crash ||
        (error instanceof PushBlockedError && error.cause instanceof Crash);
      if (!crashed) this.fail(`push failed: ${error instanceof Error ? error.stack : error}`);
      // A crash ends the process: the next step runs in a new one over the same store.
      await this.openOutbox();
    }
    await this.noteCreates();
  }

  /** Push (resolving what the policy asks about) and pull until nothing is pending. */
  async quiesce(): Promise<void> {
    this.where = "quiescence";
    for (let round = 0; ; round++) {
      if (round >= 30) this.fail("the outbox did not drain within 30 push/pull rounds");
      await this.noteCreates();
      const r = await push(this.target, this.outbox, this.options());
      if (r.status === "paused") {
        await this.outbox.resolve(r.conflict?.id as string, round % 2 ? "remote" : "local");
        continue;
      }
      await this.pull();
      if ((await this.outbox.pending(PAIR)).length === 0) break;
    }
    await this.pull();
  }

  async check(): Promise<void> {
    const { harness, backend, copy } = this;
    this.where = "the end";
    // 1. No pushed version came back as a remote edit.
    if (copy.echoes.length > 0) this.fail(`echo delivered by a pull: ${copy.echoes[0]}`);
    // 2. The app's copy equals the server.
    const ctx = { signal: new AbortController().signal };
    const server = new Map<string, SyncObject>();
    for (const k of await backend.list()) {
      const obj = await this.target.fetch(k, ctx);
      if (obj) server.set(k, obj);
    }
    const local = new Map([...copy.rows.values()].map((r) => [r.sourcekey, r]));
    const missing = [...server.keys()].filter((k) => !local.has(k));
    const extra = [...local.keys()].filter((k) => !server.has(k));
    if (missing.length) this.fail(`the copy lacks ${missing.join(", ")}, on the server`);
    if (extra.length) this.fail(`the copy holds ${extra.join(", ")}, not on the server`);
    if (copy.rows.size !== local.size) this.fail("two rows of the copy share a sourcekey");
    for (const [k, obj] of server) {
      const row = local.get(k) as CopyRow;
      if (!this.same(row.data, obj.data))
        this.fail(`${k}: the copy has ${stableJson(row.data)}, the server ${stableJson(obj.data)}`);
      if (harness.moves && row.parentKey !== obj.parentKey)
        this.fail(`${k}: the copy has it in ${row.parentKey}, the server in ${obj.parentKey}`);
      if (harness.flags && (row.read ?? false) !== (this.readOf(obj) ?? false))
        this.fail(`${k}: the copy's read flag is ${row.read}, the server's ${this.readOf(obj)}`);
    }
    // 3. No create was made twice.
    for (const [id, keys] of this.createKeys) {
      const live = [...keys].filter((k) => server.has(k));
      if (live.length > 1)
        this.fail(`local create ${id} is on the server ${live.length} times: ${live.join(", ")}`);
    }
    // 4. No conflict without a remote change of its object.
    const conflicts = await this.outbox.conflicts(PAIR, { all: true });
    for (const c of conflicts) {
      const keys = [c.entry.sourcekey, c.entry.replaces].filter((k) => k !== undefined);
      if (!keys.some((k) => this.remoteAt.has(k)))
        this.fail(`conflict ${c.id} (${c.kind}) without a remote change of ${keys.join(" / ")}`);
    }
    // 5. No lost local edit: each last wish holds unless a conflict or a later remote edit of the
    //    object accounts for it.
    const excused = (id: string, w: Wish) =>
      conflicts.some((c) => c.entry.localId === id) || (this.remoteAt.get(w.sourcekey) ?? -1) > w.i;
    for (const [id, w] of this.wishes.data) {
      if (excused(id, w)) continue;
      const row = copy.rows.get(id);
      if (w.want === null) {
        if (row) this.fail(`the local delete of ${id} (step ${w.i}) was lost: the row is back`);
        if (server.has(w.sourcekey))
          this.fail(`the local delete of ${id} (step ${w.i}) never reached the server`);
        continue;
      }
      const label = row && harness.labelOf(server.get(row.sourcekey)?.data);
      if (label !== w.want)
        this.fail(
          `the local edit of ${id} (step ${w.i}, ${w.want}) was lost: the server has ${label}`,
        );
    }
    for (const [id, w] of this.wishes.read) {
      const row = copy.rows.get(id);
      const obj = row && server.get(row.sourcekey);
      if (!obj || excused(id, w) || this.deletedLater(id, w)) continue;
      if ((this.readOf(obj) ?? false) !== w.want)
        this.fail(`the local read flag of ${id} (step ${w.i}, ${w.want}) was lost`);
    }
    for (const [id, w] of this.moveWishes) {
      const row = copy.rows.get(id);
      const obj = row && server.get(row.sourcekey);
      if (!obj || excused(id, w) || this.deletedLater(id, w)) continue;
      if (obj.parentKey !== w.want)
        this.fail(
          `the local move of ${id} (step ${w.i}, to ${w.want}) was lost: in ${obj.parentKey}`,
        );
    }
  }

  /** True when the app deleted (or re-made) the object after this wish. */
  deletedLater(id: string, w: Wish): boolean {
    const d = this.wishes.data.get(id);
    return d !== undefined && d.i > w.i && d.want === null;
  }
}
