/**
 * URL resolution against a client's `baseUrl`, and the same-origin rule for paging links.
 */
import { ProtocolError } from "../core/errors.js";

/** True when `url` (absolute, or relative to `base`) has the same scheme, host and port as `base`. */
export function sameOrigin(url: string, base: string): boolean {
  try {
    return new URL(url, base).origin === new URL(base).origin;
  } catch {
    return false;
  }
}

/**
 * Resolves `path` against `baseUrl` as RFC 3986 does (`events` appends to the base path, `/x`
 * starts at the origin root, an absolute URL stays as it is), refusing any URL on another origin:
 * a paging link or `href` from a server is followed only on the origin it came from.
 */
export function resolveUrl(
  path: string,
  baseUrl: string,
  endpoint: string,
  baseOrigin = new URL(baseUrl).origin,
): URL {
  let url: URL;
  try {
    url = new URL(path, baseUrl);
  } catch (cause) {
    throw new ProtocolError(endpoint, "invalid URL", { cause });
  }
  if (url.origin !== baseOrigin) {
    // Never send credentials to a host a server response pointed us at.
    throw new ProtocolError(endpoint, `link leaves the origin ${baseOrigin} (to ${url.origin})`);
  }
  return url;
}

/** `baseUrl` with a trailing slash, so relative paths append to its path. */
export function normalizeBaseUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  url.search = "";
  url.hash = "";
  return url.toString();
}
