/**
 * Which source an account's scope is, for `deltasync worker`: the registry's `adapter` is either
 * a URL scheme (`google` + scope `calendar/primary` → `google:calendar/primary`) or a source URL
 * template in which `{scope}` stands for the scope (`imaps://alice@imap.example.com/{scope}`).
 */
import { ArgumentError } from "../core/errors.js";
import { loadCliSource, parseSourceUrl, SCHEMES } from "./registry.js";
import type { CliSource } from "./source.js";

const SCHEME = /^[a-z][a-z0-9+.-]*$/i;

/** The source URL of one scope of an account. */
export function sourceUrlOf(adapter: string, scope: string): URL {
  let text: string;
  if (adapter.includes("{scope}")) text = adapter.replaceAll("{scope}", scope);
  else if (SCHEME.test(adapter)) text = `${adapter}:${scope}`;
  else {
    throw new ArgumentError(
      `adapter ${JSON.stringify(adapter)}: give a URL scheme (google) or a source URL with {scope} in it`,
    );
  }
  const url = parseSourceUrl(text);
  const scheme = url.protocol.replace(/:$/, "");
  if (!SCHEMES[scheme]) {
    const known = [...new Set(Object.keys(SCHEMES))].join(", ");
    throw new ArgumentError(`adapter ${JSON.stringify(adapter)}: unknown scheme (known: ${known})`);
  }
  return url;
}

/** The URL of the scope and the adapter's command-line part that opens it. */
export async function accountSource(
  adapter: string,
  scope: string,
): Promise<{ url: URL; cli: CliSource }> {
  const url = sourceUrlOf(adapter, scope);
  return { url, cli: await loadCliSource(url.protocol.replace(/:$/, "")) };
}
