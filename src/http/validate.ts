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
 * Valid records are recognised by a plain predicate compiled from `fields` (`compileCheck`);
 * zod runs only to say what is wrong with one that fails it.
 */
export function keptWhole<S extends z.ZodObject>(
  fields: S,
): z.ZodType<z.output<S> & Record<string, unknown>> {
  const valid = compileCheck(fields);
  // A check on `unknown` outputs its input: no copy, and no transform stage to run. A plain
  // check, not superRefine, which builds an addIssue closure on every parse (a third of the
  // garbage of an Aurinko page).
  const whole = z.unknown().check((ctx) => {
    if (valid?.(ctx.value)) return;
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

/** `record` is the object holding `value`, when it is a field's. */
type Predicate = (value: unknown, record?: Record<string, unknown>) => boolean;

function presentAnd(key: string, check: Predicate): Predicate {
  return (v, record) => record !== undefined && Object.hasOwn(record, key) && check(v);
}

/**
 * A predicate that accepts exactly what `schema` accepts, for the plain shapes records are
 * described with (objects, strings with a minimum length, numbers with integer formats and
 * bounds, booleans, arrays, optional, nullable), or undefined for anything else. It may be
 * stricter than zod, never looser: a value it refuses goes to zod, which has the last word.
 */
export function compileCheck(schema: z.ZodType): Predicate | undefined {
  const def = schema._zod.def as z.core.$ZodTypeDef & {
    checks?: { _zod: { def: { check: string; minimum?: number } } }[];
    coerce?: boolean;
  };
  const checks = def.checks ?? [];
  if (def.type === "string") {
    if (def.coerce) return undefined;
    let min = 0;
    for (const check of checks) {
      const c = check._zod.def;
      if (c.check !== "min_length" || typeof c.minimum !== "number") return undefined;
      min = Math.max(min, c.minimum);
    }
    return (v) => typeof v === "string" && v.length >= min;
  }
  if (def.type === "number") {
    if (def.coerce) return undefined;
    // `z.int()`, `z.uint32()`…: the schema is itself a format check, before any added ones.
    const own = (def as { check?: string }).check === undefined ? [] : [def];
    return numberCheck([...own, ...checks.map((c) => c._zod.def)]);
  }
  if (checks.length > 0) return undefined;
  switch (def.type) {
    case "unknown":
      return () => true;
    case "boolean":
      return def.coerce ? undefined : (v) => typeof v === "boolean";
    case "optional":
    case "nullable": {
      const inner = compileCheck((def as z.core.$ZodOptionalDef).innerType as z.ZodType);
      if (!inner) return undefined;
      const empty = def.type === "optional" ? undefined : null;
      return (v) => v === empty || inner(v);
    }
    case "array": {
      const element = compileCheck((def as z.core.$ZodArrayDef).element as z.ZodType);
      if (!element) return undefined;
      return (v) => {
        if (!Array.isArray(v)) return false;
        // Every index, holes included (zod checks a hole as undefined; `every` skips it).
        for (let i = 0; i < v.length; i++) if (!element(v[i])) return false;
        return true;
      };
    }
    case "object": {
      const { shape, catchall } = def as z.core.$ZodObjectDef;
      // A strict object (catchall never) or a typed catchall: left to zod.
      if (catchall !== undefined && catchall._zod.def.type !== "unknown") return undefined;
      const fields: [string, Predicate][] = [];
      for (const [key, field] of Object.entries(shape)) {
        const check = compileCheck(field as z.ZodType);
        if (!check) return undefined;
        // zod wants the key of a required `unknown` field present, even when undefined.
        const mustBePresent = check(undefined) && field._zod.def.type !== "optional";
        fields.push([key, mustBePresent ? presentAnd(key, check) : check]);
      }
      return (v) => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
        const record = v as Record<string, unknown>;
        for (const [key, check] of fields) if (!check(record[key], record)) return false;
        return true;
      };
    }
    default:
      return undefined;
  }
}

/** zod's number formats (`.int()` is `safeint`) and the range each admits. */
const NUMBER_FORMATS: Record<string, { min: number; max: number; int: boolean }> = {
  safeint: { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, int: true },
  int32: { min: -2147483648, max: 2147483647, int: true },
  uint32: { min: 0, max: 4294967295, int: true },
  float32: { min: -3.4028234663852886e38, max: 3.4028234663852886e38, int: false },
  float64: { min: -Number.MAX_VALUE, max: Number.MAX_VALUE, int: false },
};

interface NumberCheckDef {
  check: string;
  format?: string;
  value?: unknown;
  inclusive?: boolean;
  when?: unknown;
}

/** A finite number within every format and bound of `checks` (`.int()`, `.min()`, `.positive()`…). */
function numberCheck(checks: readonly unknown[]): Predicate | undefined {
  let int = false;
  let min = Number.NEGATIVE_INFINITY;
  let minInclusive = true;
  let max = Number.POSITIVE_INFINITY;
  let maxInclusive = true;
  const above = (value: number, inclusive: boolean) => {
    if (value > min || (value === min && !inclusive)) [min, minInclusive] = [value, inclusive];
  };
  const below = (value: number, inclusive: boolean) => {
    if (value < max || (value === max && !inclusive)) [max, maxInclusive] = [value, inclusive];
  };
  for (const check of checks) {
    const c = check as NumberCheckDef;
    if (c.when !== undefined) return undefined;
    if (c.check === "number_format") {
      const format = NUMBER_FORMATS[c.format ?? "float64"];
      if (format === undefined) return undefined;
      int ||= format.int;
      above(format.min, true);
      below(format.max, true);
    } else if (c.check === "greater_than" && typeof c.value === "number") {
      above(c.value, c.inclusive === true);
    } else if (c.check === "less_than" && typeof c.value === "number") {
      below(c.value, c.inclusive === true);
    } else {
      return undefined;
    }
  }
  return (v) =>
    typeof v === "number" &&
    Number.isFinite(v) &&
    (!int || Number.isInteger(v)) &&
    (minInclusive ? v >= min : v > min) &&
    (maxInclusive ? v <= max : v < max);
}
