/**
 * The shared HTTP layer every HTTP adapter uses (see docs/http.md).
 */
export { createAgent, createHttpClient, defaultError, headerValue } from "./http-client.js";
export { noBackpressure, noBackpressureAgent } from "./no-backpressure.js";
export { normalizeBaseUrl, resolveUrl, sameOrigin } from "./origin.js";
export type {
  HttpClient,
  HttpClientOptions,
  HttpErrorResponse,
  HttpRequest,
  HttpResponse,
  QueryValue,
} from "./types.js";
export { formatPath, parseJsonBody, validate } from "./validate.js";
