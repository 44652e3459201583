/**
 * One run at a time per key. A call for a busy key either joins the running run or queues one
 * follow-up (later callers join that follow-up): the follow-up starts after the running one, so
 * a change that arrived mid-run is never missed. Different keys run in parallel.
 */
export type Concurrency = "queue" | "join";

interface Slot {
  running: Promise<unknown>;
  queued?: Promise<unknown>;
}

export class KeyedRunner {
  readonly #slots = new Map<string, Slot>();

  /** True while a run (or a queued follow-up) exists for `key`. */
  busy(key: string): boolean {
    return this.#slots.has(key);
  }

  run<R>(key: string, task: () => Promise<R>, mode: Concurrency = "queue"): Promise<R> {
    const slot = this.#slots.get(key);
    if (!slot) return this.#start(key, task);
    if (mode === "join") return slot.running as Promise<R>;
    if (slot.queued) return slot.queued as Promise<R>;
    const queued = slot.running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        slot.queued = undefined;
        return this.#execute(key, slot, task);
      });
    slot.queued = queued;
    return queued;
  }

  #start<R>(key: string, task: () => Promise<R>): Promise<R> {
    const slot: Slot = { running: Promise.resolve() };
    this.#slots.set(key, slot);
    return this.#execute(key, slot, task);
  }

  #execute<R>(key: string, slot: Slot, task: () => Promise<R>): Promise<R> {
    const running = (async () => task())();
    slot.running = running;
    const done = () => {
      if (this.#slots.get(key) === slot && slot.running === running && !slot.queued) {
        this.#slots.delete(key);
      }
    };
    running.then(done, done);
    return running;
  }
}

/** The runner `runSync` uses unless given another: one per process. */
export const defaultRunner = new KeyedRunner();
