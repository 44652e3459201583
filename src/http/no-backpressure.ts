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
 */
export function noBackpressure(agent: Dispatcher): Dispatcher {
  return agent.compose((dispatch) => (opts, handler) => dispatch(opts, neverPause(handler)));
}

const CONTROLLED = new Set([
  "onRequestStart",
  "onRequestUpgrade",
  "onResponseStart",
  "onResponseData",
  "onResponseEnd",
  "onResponseError",
]);

/** `compose` hands interceptors new-style handlers: give each a controller whose pause is a no-op. */
function neverPause(handler: Dispatcher.DispatchHandler): Dispatcher.DispatchHandler {
  let wrapped: Dispatcher.DispatchController | undefined;
  let original: Dispatcher.DispatchController | undefined;
  const controllerOf = (controller: Dispatcher.DispatchController) => {
    if (controller !== original) {
      original = controller;
      wrapped = new Proxy(controller, {
        get(target, prop) {
          if (prop === "pause") return () => undefined;
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    }
    return wrapped as Dispatcher.DispatchController;
  };
  return new Proxy(handler, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (typeof prop === "string" && CONTROLLED.has(prop)) {
        return (controller: Dispatcher.DispatchController, ...rest: unknown[]) =>
          fn.call(target, controllerOf(controller), ...rest);
      }
      return fn.bind(target);
    },
  });
}

/** An undici `Agent` whose responses are never paused (see `noBackpressure`). */
export function noBackpressureAgent(options: Agent.Options): Dispatcher {
  return noBackpressure(new (loadUndici().Agent)(options));
}
