/**
 * The conformance kit: random histories of mutations interleaved with every kind of sync
 * (full, incremental, maxChanges-limited, resumed after a crash, aborted, failing importer,
 * concurrent writers, orchestrated with faults, expired state). After every completed sync, a
 * copy built only from importer calls must equal the backend's truth.
 */
import fc from "fast-check";
import { DeltaSyncError, ImporterError, StateError, StateInvalidError } from "../core/errors.js";
import type { Syncable } from "../core/syncable.js";
import type { Importer, SyncOptions } from "../core/types.js";
import { KeyedRunner } from "../orchestrator/keyed.js";
import { runSync } from "../orchestrator/run-sync.js";
import type { ConformanceBackend, ConformanceHarness, ConformanceScope } from "./harness.js";
import { diffMirror, type Mirror, mirrorImporter } from "./mirror.js";

export interface ConformanceOptions {
  /** Random histories to run (the memory adapter runs ≥ 1000 in CI; real servers ≥ 50). */
  numRuns: number;
  /** Replays one failing run. */
  seed?: number;
  /** fast-check's path of a failing run, to replay it exactly. */
  path?: string;
  /**
   * Histories run before the random ones, each as fast-check prints a counterexample: the seed
   * mutations, the steps and `withMoved` (regressions kept as tests).
   */
  examples?: readonly [seed: unknown[], steps: unknown[], withMoved: boolean][];
  /** Longest history, in steps (default 24); lengths are spread evenly up to it. */
  maxSteps?: number;
  /** Most mutations applied before anything is synced (default 12): a pre-seeded backend. */
  maxSeed?: number;
  /** Which sync kinds to mix in (default: all). */
  steps?: readonly StepKind[];
  /** Called after each history, e.g. to log progress. */
  onHistory?: (index: number) => void;
  /** Shrink a failing history to a minimal one (slow on real servers; default false). */
  shrink?: boolean;
}

/**
 * The kinds of step a history mixes:
 * - `mutate`: one random mutation;
 * - `sync` / `full`: a complete sync from the state / from nothing (the importer's copy is kept:
 *   the full sync's `beginFullSync` / `endFullSync` must leave it equal to the backend);
 * - `limited`: rounds of `maxChanges`, with mutations between rounds and, at random, a fresh
 *   syncable per round (a new process: no pages kept by read-ahead);
 * - `checkpoint` / `abort` / `fail`: a sync crashed after a checkpoint, aborted, or failed by the
 *   importer; then mutations (deletes, reverts, inserts), then the resume from the last state the
 *   run had a right to keep;
 * - `concurrent`: mutations made by another client from inside importer callbacks, mid-fetch;
 * - `orchestrated`: `runSync` with small batches, an importer crash in some batch, mutations
 *   before the restart, and one-shot faults (an invalid state, a transient error);
 * - `expire`: every state becomes invalid (`StateInvalidError`), then a full sync.
 */
export type StepKind =
  | "mutate"
  | "sync"
  | "full"
  | "limited"
  | "checkpoint"
  | "abort"
  | "fail"
  | "concurrent"
  | "orchestrated"
  | "expire";

type Fault = "invalid" | "transient";

type Step<Op> =
  | { t: "mutate"; op: Op }
  | { t: "sync" | "full"; scope: number }
  | { t: "limited"; scope: number; maxChanges: number; between: Op[]; fresh: boolean[] }
  | {
      t: "checkpoint" | "abort" | "fail";
      scope: number;
      after: number;
      between: Op[];
      fresh: boolean;
    }
  | { t: "concurrent"; scope: number; after: number; ops: Op[] }
  | {
      t: "orchestrated";
      scope: number;
      batchSize: number;
      crashAfter: number | null;
      between: Op[];
      fault: Fault | null;
    }
  | { t: "expire" };

interface ScopeRun {
  scope: ConformanceScope;
  /** The syncable in use: the scope's, or one `reopen` made for a "new process". */
  syncable: Syncable;
  mirror: Mirror;
  state: string | undefined;
}

/** A failure of the contract, with the scope and step that showed it. */
export class ConformanceError extends DeltaSyncError {
  override readonly code = "ERR_CONFORMANCE";
}

function stepArbitrary<Op>(
  mutation: fc.Arbitrary<Op>,
  kinds: readonly StepKind[],
): fc.Arbitrary<Step<Op>> {
  const scope = fc.nat(31);
  const ops = (max: number) => fc.array(mutation, { maxLength: max, size: "max" });
  const all: Record<StepKind, fc.Arbitrary<Step<Op>>> = {
    mutate: mutation.map((op) => ({ t: "mutate" as const, op })),
    sync: scope.map((s) => ({ t: "sync" as const, scope: s })),
    full: scope.map((s) => ({ t: "full" as const, scope: s })),
    limited: fc.record({
      t: fc.constant("limited" as const),
      scope,
      maxChanges: fc.integer({ min: 1, max: 4 }),
      between: ops(4),
      fresh: fc.array(fc.boolean(), { maxLength: 6 }),
    }),
    checkpoint: interrupted("checkpoint", scope, fc.nat(3), ops(5)),
    abort: interrupted("abort", scope, fc.nat(6), ops(5)),
    fail: interrupted("fail", scope, fc.nat(6), ops(5)),
    concurrent: fc.record({
      t: fc.constant("concurrent" as const),
      scope,
      after: fc.nat(4),
      ops: fc.array(mutation, { minLength: 1, maxLength: 4 }),
    }),
    orchestrated: fc.record({
      t: fc.constant("orchestrated" as const),
      scope,
      batchSize: fc.integer({ min: 1, max: 5 }),
      crashAfter: fc.option(fc.nat(8), { nil: null }) as fc.Arbitrary<number | null>,
      between: ops(4),
      fault: fc.option(fc.constantFrom<Fault>("invalid", "transient"), {
        nil: null,
      }) as fc.Arbitrary<Fault | null>,
    }),
    expire: fc.constant({ t: "expire" as const }),
  };
  const weights: Record<StepKind, number> = {
    mutate: 12,
    sync: 3,
    full: 1,
    limited: 2,
    checkpoint: 1,
    abort: 1,
    fail: 1,
    concurrent: 1,
    orchestrated: 2,
    expire: 1,
  };
  return fc.oneof(...kinds.map((k) => ({ arbitrary: all[k], weight: weights[k] })));
}

function interrupted<Op, K extends "checkpoint" | "abort" | "fail">(
  t: K,
  scope: fc.Arbitrary<number>,
  after: fc.Arbitrary<number>,
  between: fc.Arbitrary<Op[]>,
) {
  return fc.record({ t: fc.constant(t), scope, after, between, fresh: fc.boolean() });
}

const ALL_STEPS: readonly StepKind[] = [
  "mutate",
  "sync",
  "full",
  "limited",
  "checkpoint",
  "abort",
  "fail",
  "concurrent",
  "orchestrated",
  "expire",
];

/**
 * The kits' `seed` and `path`, for fast-check, only when given: an explicit `seed: undefined`
 * would hide the global seed (FC_SEED in CI), and every history would be a random one.
 */
export function replayParameters(options: { seed?: number; path?: string }): {
  seed?: number;
  path?: string;
} {
  return {
    ...(options.seed !== undefined && { seed: options.seed }),
    ...(options.path !== undefined && { path: options.path }),
  };
}

/**
 * Runs `numRuns` random histories against the harness's backend; throws a `ConformanceError`
 * (inside fast-check's report, with the seed to replay) on the first violation. Each history
 * starts from a pre-seeded backend and an empty copy, and ends with a complete sync that must
 * leave the copy equal to the backend. Every tenth history also checks the scopes' foreign and
 * ahead-of-head states when the harness can make them.
 *
 * @example
 * await checkConformance(memoryHarness(), { numRuns: 1000 });
 */
export async function checkConformance<Op>(
  harness: ConformanceHarness<Op>,
  options: ConformanceOptions,
): Promise<void> {
  const kinds = options.steps ?? ALL_STEPS;
  const history = fc.array(stepArbitrary(harness.mutation, kinds), {
    maxLength: options.maxSteps ?? 24,
    size: "max",
  });
  const seedOps = fc.array(harness.mutation, { maxLength: options.maxSeed ?? 12, size: "max" });
  let index = 0;
  await fc.assert(
    fc.asyncProperty(seedOps, history, fc.boolean(), async (seed, steps, withMoved) => {
      const backend = await harness.setup();
      try {
        for (const op of seed) await backend.apply(op);
        if (index % 10 === 0) await checkForeignStates(harness.name, backend);
        await runHistory(harness.name, backend, steps, withMoved);
      } finally {
        await backend.teardown();
        options.onHistory?.(index++);
      }
    }),
    {
      numRuns: options.numRuns,
      ...replayParameters(options),
      ...(options.examples !== undefined && {
        examples: options.examples as [Op[], Step<Op>[], boolean][],
      }),
      endOnFailure: !options.shrink,
    },
  );
}

async function runHistory<Op>(
  name: string,
  backend: ConformanceBackend<Op>,
  steps: Step<Op>[],
  withMoved: boolean,
): Promise<void> {
  const runs: ScopeRun[] = backend.scopes.map((scope) => ({
    scope,
    syncable: scope.syncable,
    mirror: new Map(),
    state: undefined,
  }));
  if (runs.length === 0) throw new ConformanceError(`${name}: the harness has no scopes`);
  const where = (run: ScopeRun, i: number, what: string) =>
    `${name} ${run.scope.name}, step ${i} (${what})`;
  const settle = () => backend.settle?.() ?? Promise.resolve();
  const applyAll = async (ops: readonly Op[]) => {
    for (const op of ops) await backend.apply(op);
    await settle();
  };
  const importerOf = (run: ScopeRun) => mirrorImporter(run.mirror, run.scope, withMoved);

  await settle();
  for (const [i, step] of steps.entries()) {
    if (step.t === "mutate") {
      await backend.apply(step.op);
      continue;
    }
    await settle();
    if (step.t === "expire") {
      if (!backend.expireStates) continue;
      await backend.expireStates();
      await settle();
      for (const run of runs) {
        if (run.state === undefined) continue;
        await expectRejects(
          run.syncable.sync({}, run.state),
          StateInvalidError,
          where(run, i, "sync with an expired state"),
        );
        run.state = undefined;
        await completeSync(run, importerOf(run), where(run, i, "full sync after expiry"));
      }
      continue;
    }
    const run = runs[step.scope % runs.length] as ScopeRun;
    const label = where(run, i, step.t);
    switch (step.t) {
      case "sync":
        await completeSync(run, importerOf(run), label);
        break;
      case "full":
        run.state = undefined;
        await completeSync(run, importerOf(run), label);
        break;
      case "limited":
        await limitedSync(run, importerOf, step, applyAll, label);
        break;
      case "checkpoint":
      case "abort":
      case "fail":
        await interruptedSync(run, importerOf(run), step.t, step.after, label);
        await applyAll(step.between);
        if (step.fresh) await reopen(run);
        await completeSync(run, importerOf(run), `${label}, resumed`);
        break;
      case "concurrent":
        await concurrentSync(run, importerOf(run), step.after, () => applyAll(step.ops), label);
        break;
      case "orchestrated":
        await orchestratedSync(run, importerOf, step, backend, applyAll, label);
        break;
    }
  }
  await settle();
  for (const run of runs)
    await completeSync(run, importerOf(run), where(run, steps.length, "final sync"));
}

/** A fresh syncable for the run's scope, as a restarted process would build it. */
async function reopen(run: ScopeRun): Promise<void> {
  if (run.scope.reopen) run.syncable = await run.scope.reopen();
}

/** Syncs from the run's state to completion and compares the mirror with the truth. */
async function completeSync(run: ScopeRun, importer: Importer, label: string): Promise<void> {
  const outcome = await syncOrResync(run, importer);
  if (!outcome.complete)
    throw new ConformanceError(`${label}: a sync without maxChanges returned complete: false`);
  run.state = outcome.state;
  await compare(run, label);
}

/**
 * A sync from the run's state; a `StateInvalidError` on a resume (the documented answer of an
 * adapter that can't verify what a resumed page lost) is followed by a full sync, as the
 * orchestrator does: the copy is swept, never cleared by the kit.
 */
async function syncOrResync(run: ScopeRun, importer: Importer) {
  try {
    return await run.syncable.exportChanges(importer, run.state);
  } catch (error) {
    if (!(error instanceof StateInvalidError) || run.state === undefined) throw error;
    run.state = undefined;
    return run.syncable.exportChanges(importer, undefined);
  }
}

async function compare(run: ScopeRun, label: string): Promise<void> {
  const diff = diffMirror(run.mirror, await run.scope.truth());
  if (diff) throw new ConformanceError(`${label}: the mirror differs from the backend:\n${diff}`);
}

/**
 * Syncs in slices of `maxChanges`, each resumed from the state the previous one returned, with
 * mutations between slices and, at random, a new syncable per slice.
 */
async function limitedSync<Op>(
  run: ScopeRun,
  importerOf: (run: ScopeRun) => Importer,
  step: Extract<Step<Op>, { t: "limited" }>,
  applyAll: (ops: readonly Op[]) => Promise<void>,
  label: string,
): Promise<void> {
  const { maxChanges } = step;
  for (let round = 0; ; round++) {
    if (step.fresh[round]) await reopen(run);
    const outcome = await run.syncable.exportChanges(importerOf(run), run.state, { maxChanges });
    run.state = outcome.state;
    const delivered =
      outcome.counts.update + outcome.counts.delete + outcome.counts.read + outcome.counts.move;
    if (delivered > maxChanges)
      throw new ConformanceError(
        `${label}: maxChanges ${maxChanges} but ${delivered} changes were delivered`,
      );
    if (outcome.complete) break;
    const op = step.between[round];
    if (op !== undefined) await applyAll([op]);
    // Every round delivers at least one change or completes, and a history holds a few hundred
    // changes at most: far more rounds is a livelock (fail with the seed instead of hanging).
    if (round > 2_000)
      throw new ConformanceError(
        `${label}: maxChanges-limited sync never completed (${round} rounds of ${maxChanges})`,
      );
  }
  if (step.between.length === 0) await compare(run, label);
  else await completeSync(run, importerOf(run), `${label}, then a complete sync`);
}

/**
 * A sync that stops early: after `after` checkpoints (a crash), after `after` changes (abort),
 * or with the importer throwing on call `after`. The run keeps the last state it had a right
 * to keep: the last checkpoint, or the state it started from.
 */
async function interruptedSync(
  run: ScopeRun,
  inner: Importer,
  how: "checkpoint" | "abort" | "fail",
  after: number,
  label: string,
): Promise<void> {
  const controller = new AbortController();
  let calls = 0;
  let failedOn: unknown;
  const importer = countCalls(inner, (_method, args) => {
    calls++;
    if (how === "fail" && calls > after) {
      failedOn = args[0];
      return new Error("injected importer failure");
    }
    if (how === "abort" && calls > after) controller.abort(new Error("injected abort"));
    return undefined;
  });
  let checkpoints = 0;
  let lastCheckpoint = run.state;
  const options: SyncOptions = {
    signal: controller.signal,
    onCheckpoint: (state) => {
      lastCheckpoint = state;
      if (how === "checkpoint" && ++checkpoints > after)
        controller.abort(new Error("injected crash after checkpoint"));
    },
  };
  try {
    const outcome = await run.syncable.exportChanges(importer, run.state, options);
    run.state = outcome.state;
  } catch (error) {
    if (how === "fail") {
      if (!(error instanceof ImporterError))
        throw new ConformanceError(
          `${label}: an importer failure must reject with ImporterError, got ${String(error)}`,
          { cause: error },
        );
      const sourcekey = (failedOn as { sourcekey?: string } | undefined)?.sourcekey;
      if (
        failedOn !== undefined &&
        error.change?.object !== failedOn &&
        error.change?.object.sourcekey !== sourcekey
      ) {
        throw new ConformanceError(
          `${label}: ImporterError.change is not the change the importer failed on`,
        );
      }
    } else if (!controller.signal.aborted || error !== controller.signal.reason) {
      throw error;
    }
    run.state = lastCheckpoint;
  }
}

/** Another client writes while the sync is in flight (from inside importer callbacks). */
async function concurrentSync(
  run: ScopeRun,
  inner: Importer,
  after: number,
  write: () => Promise<void>,
  label: string,
): Promise<void> {
  let calls = 0;
  let written: Promise<void> | undefined;
  const importer = countCalls(
    inner,
    () => undefined,
    async () => {
      if (++calls > after && written === undefined) {
        written = write();
        await written;
      }
    },
  );
  const outcome = await run.syncable.exportChanges(importer, run.state);
  run.state = outcome.state;
  if (written === undefined) await write();
  await completeSync(run, inner, `${label}, then a complete sync`);
}

/**
 * `runSync` as an application runs it: batches of `batchSize`, the state kept by compare-and-set,
 * a one-shot fault before the run, and an importer that crashes the "process" in some batch;
 * then mutations and a restart that must complete the copy.
 */
async function orchestratedSync<Op>(
  run: ScopeRun,
  importerOf: (run: ScopeRun) => Importer,
  step: Extract<Step<Op>, { t: "orchestrated" }>,
  backend: ConformanceBackend<Op>,
  applyAll: (ops: readonly Op[]) => Promise<void>,
  label: string,
): Promise<void> {
  const store = {
    getState: () => run.state,
    saveState: (next: string, previous: string | undefined) => {
      if (previous !== run.state) return false;
      run.state = next;
      return true;
    },
  };
  const options = {
    ...store,
    batchSize: step.batchSize,
    retry: { retries: 3, minDelayMs: 0, maxDelayMs: 0 },
    runner: new KeyedRunner(),
  };
  if (step.fault && run.state !== undefined) await backend.injectFault?.(step.fault);
  let calls = 0;
  const crashing = countCalls(importerOf(run), () =>
    step.crashAfter !== null && ++calls > step.crashAfter ? new Error("injected crash") : undefined,
  );
  try {
    await runSync(run.syncable, { ...options, importer: crashing });
  } catch (error) {
    if (!(error instanceof ImporterError)) {
      throw new ConformanceError(`${label}: runSync failed: ${String(error)}`, { cause: error });
    }
  }
  await applyAll(step.between);
  await reopen(run);
  await runSync(run.syncable, { ...options, importer: importerOf(run) });
  await compare(run, `${label}, restarted`);
}

/** Foreign states must be `StateError`, ahead-of-head states `StateInvalidError`; nothing imported. */
async function checkForeignStates<Op>(name: string, backend: ConformanceBackend<Op>) {
  for (const scope of backend.scopes) {
    type ErrorClass = abstract new (...a: never[]) => Error;
    const cases: [string, (() => Promise<string>) | undefined, ErrorClass][] = [
      ["a state of another backend", scope.foreignState, StateError],
      ["a state ahead of the server", scope.aheadState, StateInvalidError],
    ];
    for (const [what, make, type] of cases) {
      if (!make) continue;
      const state = await make.call(scope);
      let calls = 0;
      const count = () => {
        calls++;
      };
      const importer = { update: count, delete: count, read: count, beginFullSync: count };
      await expectRejects(
        scope.syncable.sync(importer, state),
        type,
        `${name} ${scope.name}: ${what}`,
      );
      if (calls > 0)
        throw new ConformanceError(`${name} ${scope.name}: ${what} reached the importer`);
    }
  }
}

type Intercept = (method: string, args: unknown[]) => Error | undefined;

/**
 * Wraps every change method of an importer; `intercept` may return an error to throw instead,
 * `after` runs (and is awaited) once the call went through. The full-sync hooks pass through.
 */
function countCalls(
  importer: Importer,
  intercept: Intercept,
  after?: () => Promise<void>,
): Importer {
  const wrapped: Importer = {
    beginFullSync: () => importer.beginFullSync?.(),
    endFullSync: () => importer.endFullSync?.(),
  };
  for (const method of ["update", "delete", "read", "moved"] as const) {
    const fn = importer[method] as ((...a: unknown[]) => unknown) | undefined;
    if (!fn) continue;
    (wrapped as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const error = intercept(method, args);
      if (error) throw error;
      const result = fn.apply(importer, args);
      return after ? Promise.resolve(result).then(after) : result;
    };
  }
  return wrapped;
}

async function expectRejects(
  promise: Promise<unknown>,
  type: abstract new (...a: never[]) => Error,
  label: string,
): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof type) return;
    throw new ConformanceError(`${label}: expected ${type.name}, got ${String(error)}`, {
      cause: error,
    });
  }
  throw new ConformanceError(`${label}: expected ${type.name}, but it resolved`);
}
