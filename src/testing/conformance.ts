/**
 * The conformance kit: random histories of mutations interleaved with every kind of sync
 * (full, incremental, maxChanges-limited, resumed from a checkpoint, aborted, failing importer,
 * expired state). After every completed sync, a mirror built only from importer calls must
 * equal the backend's truth.
 */
import fc from "fast-check";
import { DeltaSyncError, ImporterError, StateInvalidError } from "../core/errors.js";
import type { Importer, SyncOptions } from "../core/types.js";
import type { ConformanceBackend, ConformanceHarness, ConformanceScope } from "./harness.js";
import { diffMirror, type Mirror, mirrorImporter } from "./mirror.js";

export interface ConformanceOptions {
  /** Random histories to run (the memory adapter runs ≥ 1000 in CI; real servers ≥ 50). */
  numRuns: number;
  /** Replays one failing run. */
  seed?: number;
  /** fast-check's path of a failing run, to replay it exactly. */
  path?: string;
  /** Longest history, in steps (default 24). */
  maxSteps?: number;
  /** Which sync kinds to mix in (default: all). */
  steps?: readonly StepKind[];
  /** Called after each history, e.g. to log progress. */
  onHistory?: (index: number) => void;
}

export type StepKind =
  | "mutate"
  | "sync"
  | "full"
  | "limited"
  | "checkpoint"
  | "abort"
  | "fail"
  | "expire";

type Step<Op> =
  | { t: "mutate"; op: Op }
  | { t: "sync" | "full"; scope: number }
  | { t: "limited"; scope: number; maxChanges: number }
  | { t: "checkpoint" | "abort" | "fail"; scope: number; after: number }
  | { t: "expire" };

interface ScopeRun {
  scope: ConformanceScope;
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
  const all: Record<StepKind, fc.Arbitrary<Step<Op>>> = {
    mutate: mutation.map((op) => ({ t: "mutate" as const, op })),
    sync: scope.map((s) => ({ t: "sync" as const, scope: s })),
    full: scope.map((s) => ({ t: "full" as const, scope: s })),
    limited: fc.record({
      t: fc.constant("limited" as const),
      scope,
      maxChanges: fc.integer({ min: 1, max: 4 }),
    }),
    checkpoint: fc.record({ t: fc.constant("checkpoint" as const), scope, after: fc.nat(3) }),
    abort: fc.record({ t: fc.constant("abort" as const), scope, after: fc.nat(6) }),
    fail: fc.record({ t: fc.constant("fail" as const), scope, after: fc.nat(6) }),
    expire: fc.constant({ t: "expire" as const }),
  };
  const weights: Record<StepKind, number> = {
    mutate: 10,
    sync: 3,
    full: 1,
    limited: 2,
    checkpoint: 1,
    abort: 1,
    fail: 1,
    expire: 1,
  };
  return fc.oneof(...kinds.map((k) => ({ arbitrary: all[k], weight: weights[k] })));
}

/**
 * Runs `numRuns` random histories against the harness's backend; throws a `ConformanceError`
 * (inside fast-check's report, with the seed to replay) on the first violation.
 *
 * @example
 * await checkConformance(memoryHarness(), { numRuns: 1000 });
 */
export async function checkConformance<Op>(
  harness: ConformanceHarness<Op>,
  options: ConformanceOptions,
): Promise<void> {
  const kinds =
    options.steps ??
    (["mutate", "sync", "full", "limited", "checkpoint", "abort", "fail", "expire"] as const);
  const history = fc.array(stepArbitrary(harness.mutation, kinds), {
    maxLength: options.maxSteps ?? 24,
  });
  let index = 0;
  await fc.assert(
    fc.asyncProperty(history, fc.boolean(), async (steps, withMoved) => {
      const backend = await harness.setup();
      try {
        await runHistory(harness.name, backend, steps, withMoved);
      } finally {
        await backend.teardown();
        options.onHistory?.(index++);
      }
    }),
    { numRuns: options.numRuns, seed: options.seed, path: options.path, endOnFailure: true },
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
    mirror: new Map(),
    state: undefined,
  }));
  if (runs.length === 0) throw new ConformanceError(`${name}: the harness has no scopes`);
  const where = (run: ScopeRun, i: number, what: string) =>
    `${name} ${run.scope.name}, step ${i} (${what})`;
  const settle = () => backend.settle?.() ?? Promise.resolve();

  for (const run of runs) await completeSync(run, withMoved, where(run, -1, "initial full sync"));
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
        const old = run.state;
        await expectRejects(
          run.scope.syncable.sync({}, old),
          StateInvalidError,
          where(run, i, "sync with an expired state"),
        );
        run.state = undefined;
        await completeSync(run, withMoved, where(run, i, "full sync after expiry"));
      }
      continue;
    }
    const run = runs[step.scope % runs.length] as ScopeRun;
    const label = where(run, i, step.t);
    switch (step.t) {
      case "sync":
        await completeSync(run, withMoved, label);
        break;
      case "full":
        run.state = undefined;
        await completeSync(run, withMoved, label);
        break;
      case "limited":
        await limitedSync(run, withMoved, step.maxChanges, label);
        break;
      case "checkpoint":
      case "abort":
      case "fail":
        await interruptedSync(run, withMoved, step.t, step.after, label);
        await completeSync(run, withMoved, `${label}, resumed`);
        break;
    }
  }
  await settle();
  for (const run of runs)
    await completeSync(run, withMoved, where(run, steps.length, "final sync"));
}

/** Syncs from the run's state to completion and compares the mirror with the truth. */
async function completeSync(run: ScopeRun, withMoved: boolean, label: string): Promise<void> {
  if (run.state === undefined) run.mirror.clear();
  const outcome = await run.scope.syncable.exportChanges(
    mirrorImporter(run.mirror, run.scope, withMoved),
    run.state,
  );
  if (!outcome.complete)
    throw new ConformanceError(`${label}: a sync without maxChanges returned complete: false`);
  run.state = outcome.state;
  await compare(run, label);
}

async function compare(run: ScopeRun, label: string): Promise<void> {
  const diff = diffMirror(run.mirror, await run.scope.truth());
  if (diff) throw new ConformanceError(`${label}: the mirror differs from the backend:\n${diff}`);
}

/** Syncs in slices of `maxChanges`, each resumed from the state the previous one returned. */
async function limitedSync(
  run: ScopeRun,
  withMoved: boolean,
  maxChanges: number,
  label: string,
): Promise<void> {
  if (run.state === undefined) run.mirror.clear();
  for (let round = 0; ; round++) {
    const importer = mirrorImporter(run.mirror, run.scope, withMoved);
    const outcome = await run.scope.syncable.exportChanges(importer, run.state, { maxChanges });
    run.state = outcome.state;
    const delivered =
      outcome.counts.update + outcome.counts.delete + outcome.counts.read + outcome.counts.move;
    if (delivered > maxChanges)
      throw new ConformanceError(
        `${label}: maxChanges ${maxChanges} but ${delivered} changes were delivered`,
      );
    if (outcome.complete) break;
    if (round > 100_000)
      throw new ConformanceError(`${label}: maxChanges-limited sync never completed`);
  }
  await compare(run, label);
}

/**
 * A sync that stops early: after `after` checkpoints (a crash), after `after` changes (abort),
 * or with the importer throwing on call `after`. The run then resumes from the last state it had
 * a right to keep: the last checkpoint, or the state it started from.
 */
async function interruptedSync(
  run: ScopeRun,
  withMoved: boolean,
  how: "checkpoint" | "abort" | "fail",
  after: number,
  label: string,
): Promise<void> {
  if (run.state === undefined) run.mirror.clear();
  const controller = new AbortController();
  let calls = 0;
  let failedOn: unknown;
  const inner = mirrorImporter(run.mirror, run.scope, withMoved);
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
  let outcome: Awaited<ReturnType<typeof run.scope.syncable.exportChanges>> | undefined;
  try {
    outcome = await run.scope.syncable.exportChanges(importer, run.state, options);
  } catch (error) {
    if (how === "fail") {
      if (!(error instanceof ImporterError))
        throw new ConformanceError(
          `${label}: an importer failure must reject with ImporterError, got ${String(error)}`,
          { cause: error },
        );
      if (
        error.change.object !== failedOn &&
        error.change.object.sourcekey !== (failedOn as { sourcekey?: string })?.sourcekey
      ) {
        throw new ConformanceError(
          `${label}: ImporterError.change is not the change the importer failed on`,
        );
      }
    } else if (!controller.signal.aborted || error !== controller.signal.reason) {
      throw error;
    }
    run.state = lastCheckpoint;
    return;
  }
  run.state = outcome.state;
  await compare(run, label);
}

type Intercept = (method: string, args: unknown[]) => Error | undefined;

/** Wraps every importer method; `intercept` may return an error to throw instead. */
function countCalls(importer: Importer, intercept: Intercept): Importer {
  const wrapped: Importer = {};
  for (const method of ["update", "delete", "read", "moved"] as const) {
    const fn = importer[method] as ((...a: unknown[]) => unknown) | undefined;
    if (!fn) continue;
    (wrapped as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const error = intercept(method, args);
      if (error) throw error;
      return fn.apply(importer, args);
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
