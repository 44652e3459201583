/** Quoting untrusted values in error messages (internal: not exported from the package). */

/**
 * A value as error messages quote it: JSON, cut to `max` characters, so a crafted state or a
 * server's answer can't flood logs (or smuggle a whole HTML page into a one-line message).
 */
export function quote(value: unknown, max = 120): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length <= max ? text : `${text.slice(0, max - 1)}…(${text.length} chars)`;
}
