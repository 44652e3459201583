/** The webhook plumbing now lives in src/notify/webhook.ts (shared with the Aurinko adapter). */
export * from "../../src/notify/webhook.js";
