/**
 * deltasync: incremental change synchronization for mail, calendars and contacts.
 * @module
 */
export * from "./core/index.js";
export {
  createHttpClient,
  type HttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type HttpResponse,
  sameOrigin,
} from "./http/index.js";
export * from "./notify/index.js";
export * from "./orchestrator/index.js";
export * from "./scale/index.js";
export * from "./stores/index.js";
export * from "./two-way/index.js";
