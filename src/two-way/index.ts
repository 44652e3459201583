export { twoWayImporter } from "./importer.js";
export type { OutboxDoc } from "./log.js";
export type { MassChangeGuard } from "./mass-change.js";
export { createOutbox, type Outbox, type OutboxOptions } from "./outbox.js";
export { type PushOptions, type PushResult, push } from "./push.js";
export { type SettleOptions, settlePushed } from "./settle.js";
export type * from "./types.js";
