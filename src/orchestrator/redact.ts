/**
 * Removes credentials from text before it reaches telemetry or a log line: URL userinfo,
 * Authorization schemes, and `password=` / `token=`-style parameters.
 */
const PATTERNS: [RegExp, string][] = [
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]*:[^/\s@]*@/gi, "$1***@"],
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{4,}/g, "$1 ***"],
  [
    /\b(pass(?:word)?|pwd|secret|token|access_token|refresh_token|api[_-]?key|client_secret|auth)(["']?\s*[=:]\s*["']?)[^\s&"',;]+/gi,
    "$1$2***",
  ],
];

/** The text with credentials masked, plus any literal secrets given (env values, flags). */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of [...secrets, ...registered]) {
    if (secret.length >= 3) out = out.split(secret).join("***");
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** A one-line, credential-free description of an error: `name: message`. */
export function describeError(error: unknown, secrets: readonly string[] = []): string {
  const e = error as { name?: unknown; message?: unknown } | null;
  const name = e && typeof e.name === "string" ? e.name : "Error";
  const message = e && typeof e.message === "string" ? e.message : String(error);
  return redact(`${name}: ${message}`.replace(/\s*\n\s*/g, " "), secrets);
}

const registered = new Set<string>();

/** Registers secret values (passwords, tokens) that every redaction masks from now on. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 3) registered.add(value);
}

/** The secrets registered so far. */
export function registeredSecrets(): readonly string[] {
  return [...registered];
}
