import { createRequire } from "node:module";
import type { Agent, Dispatcher } from "undici";

// undici is loaded on first use: it is a third of `import "deltasync"`'s load time otherwise.
let undici: typeof import("undici") | undefined;
const loadUndici = () => {
  undici ??= createRequire(import.meta.url)("undici") as typeof import("undici");
  return undici;
};

/**
 * undici 7 crashes the process (uncatchable `assert(!this.paused)`, nodejs/undici#5360, fixed
 * only in 8.x) when a server closes the connection while a large body is paused by
 * backpressure. Radicale speaks HTTP/1.0 and closes after every response, so a multi-megabyte
 * multistatus hits it. The client reads every body whole anyway, so its dispatcher never
 * applies backpressure.
 *
 * A dispatcher of its own, not `compose`: an interceptor turns `request()`'s handler into the
 * new handler interface and back again, parsing and rebuilding every response's headers twice.
 */
export function noBackpressure(inner: Dispatcher): Dispatcher {
  const { Dispatcher: Base } = loadUndici();
  class NeverPaused extends Base {
    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
      return inner.dispatch(options, neverPause(handler));
    }
    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      return callback ? inner.close(callback) : inner.close();
    }
    override destroy(): Promise<void>;
    override destroy(err: Error | null): Promise<void>;
    override destroy(callback: () => void): void;
    override destroy(err: Error | null, callback: () => void): void;
    override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
      if (typeof a === "function") return inner.destroy(a);
      if (b) return inner.destroy(a ?? null, b);
      return inner.destroy(a ?? null);
    }
  }
  return new NeverPaused();
}

/** `handler`, told its pauses are not taken: a legacy one by its return values, a new one by its controller. */
function neverPause(handler: Dispatcher.DispatchHandler): Dispatcher.DispatchHandler {
  return handler.onRequestStart
    ? new ControllerHidden(handler)
    : new ReturnsIgnored(handler as LegacyHandler);
}

type LegacyHandler = Required<
  Pick<Dispatcher.DispatchHandler, "onHeaders" | "onData" | "onComplete" | "onError">
> &
  Dispatcher.DispatchHandler;

/** The legacy interface (`request()`'s): returning `false` from `onHeaders`/`onData` pauses. */
class ReturnsIgnored implements Dispatcher.DispatchHandler {
  readonly #h: LegacyHandler;
  constructor(handler: LegacyHandler) {
    this.#h = handler;
  }
  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    (this.#h.onConnect as ((a: typeof abort, c?: unknown) => void) | undefined)?.(abort, context);
  }
  onResponseStarted(): void {
    this.#h.onResponseStarted?.();
  }
  onHeaders(
    statusCode: number,
    headers: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean {
    this.#h.onHeaders(statusCode, headers, resume, statusText);
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.#h.onData(chunk);
    return true;
  }
  onComplete(trailers: string[] | null): void {
    this.#h.onComplete(trailers);
  }
  onError(err: Error): void {
    this.#h.onError(err);
  }
  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: never): void {
    this.#h.onUpgrade?.(statusCode, headers, socket);
  }
  onBodySent(chunk: unknown): void {
    (this.#h as { onBodySent?: (c: unknown) => void }).onBodySent?.(chunk);
  }
}

/** The new interface: pauses go through the controller, so it gets one whose `pause` is a no-op. */
class ControllerHidden implements Dispatcher.DispatchHandler {
  readonly #h: Dispatcher.DispatchHandler;
  #original: Dispatcher.DispatchController | undefined;
  #wrapped: Dispatcher.DispatchController | undefined;
  constructor(handler: Dispatcher.DispatchHandler) {
    this.#h = handler;
  }
  #controller(controller: Dispatcher.DispatchController): Dispatcher.DispatchController {
    if (controller !== this.#original) {
      this.#original = controller;
      this.#wrapped = new PauseIgnored(controller);
    }
    return this.#wrapped as Dispatcher.DispatchController;
  }
  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#h.onRequestStart?.(this.#controller(controller), context);
  }
  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    socket: never,
  ): void {
    this.#h.onRequestUpgrade?.(this.#controller(controller), statusCode, headers, socket);
  }
  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    this.#h.onResponseStart?.(this.#controller(controller), statusCode, headers, statusMessage);
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#h.onResponseData?.(this.#controller(controller), chunk);
  }
  onResponseEnd(
    controller: Dispatcher.DispatchController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.#h.onResponseEnd?.(this.#controller(controller), trailers);
  }
  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.#h.onResponseError?.(this.#controller(controller), error);
  }
}

class PauseIgnored implements Dispatcher.DispatchController {
  readonly #c: Dispatcher.DispatchController;
  constructor(controller: Dispatcher.DispatchController) {
    this.#c = controller;
  }
  get aborted() {
    return this.#c.aborted;
  }
  get paused() {
    return false;
  }
  get reason() {
    return this.#c.reason;
  }
  get rawHeaders() {
    return this.#c.rawHeaders;
  }
  get rawTrailers() {
    return this.#c.rawTrailers;
  }
  abort(reason: Error) {
    this.#c.abort(reason);
  }
  pause() {}
  resume() {
    this.#c.resume();
  }
}

/** An undici `Agent` whose responses are never paused (see `noBackpressure`). */
export function noBackpressureAgent(options: Agent.Options): Dispatcher {
  return noBackpressure(new (loadUndici().Agent)(options));
}
