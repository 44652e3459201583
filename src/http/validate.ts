/**
 * Turns a response body into a validated value, or a `ProtocolError` naming the endpoint and field.
 */
import { type ZodType, z } from "zod";
import { ProtocolError } from "../core/errors.js";

/** `items[3].status` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

/** Parses `text` as JSON and validates it with `schema`. */
export function parseJsonBody<T>(text: string, schema: ZodType<T>, endpoint: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError(endpoint, "response body is not valid JSON", { cause });
  }
  return validate(json, schema, endpoint);
}

/** Validates an already parsed value with `schema`. */
export function validate<T>(value: unknown, schema: ZodType<T>, endpoint: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue ? formatPath(issue.path) : "(root)";
  const what = issue ? issue.message : "invalid";
  const more = result.error.issues.length > 1 ? ` (+${result.error.issues.length - 1} more)` : "";
  throw new ProtocolError(endpoint, `invalid response body at ${where}: ${what}${more}`, {
    cause: result.error,
  });
}

/**
 * A schema that checks the fields `fields` names and passes the value on whole, as parsed from
 * the wire: the importer gets every field the server sent, without the copy a loose object
 * schema makes of each record (its cost shows on pages of thousands). Issues keep their paths.
 */
export function keptWhole<S extends z.ZodObject>(
  fields: S,
): z.ZodType<z.output<S> & Record<string, unknown>> {
  // A check on `unknown` outputs its input: no copy, and no transform stage to run. A plain
  // check, not superRefine, which builds an addIssue closure on every parse (a third of the
  // garbage of an Aurinko page).
  const whole = z.unknown().check((ctx) => {
    const checked = fields.safeParse(ctx.value);
    if (checked.success) return;
    for (const issue of checked.error.issues) {
      ctx.issues.push({
        code: "custom",
        message: issue.message,
        path: [...issue.path],
        input: ctx.value,
      });
    }
  });
  return whole as unknown as z.ZodType<z.output<S> & Record<string, unknown>>;
}
