export * from "./composite.js";
export * from "./engine.js";
export * from "./errors.js";
export * from "./lifecycle.js";
export * from "./snapshot.js";
export type * from "./source.js";
export * from "./state.js";
export * from "./syncable.js";
export * from "./types.js";
