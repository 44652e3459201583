/**
 * `deltasync/testing`: the conformance kit every adapter must pass, and the mirror helpers it
 * is built from. See docs/writing-an-adapter.md.
 * @module
 */
export {
  ConformanceError,
  type ConformanceOptions,
  checkConformance,
  type StepKind,
} from "./conformance.js";
export type {
  ConformanceBackend,
  ConformanceHarness,
  ConformanceScope,
  MirrorEntry,
} from "./harness.js";
export { diffMirror, type Mirror, mirrorImporter } from "./mirror.js";
export { checkNotificationFilters } from "./notifications.js";
export { checkStateErrors } from "./state-errors.js";
export {
  checkTwoWayConformance,
  TwoWayConformanceError,
  type TwoWayConformanceOptions,
  type TwoWayPolicy,
  type TwoWayStep,
} from "./two-way.js";
export type {
  TwoWayBackend,
  TwoWayHarness,
  TwoWayRemote,
} from "./two-way-harness.js";
