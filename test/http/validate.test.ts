import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ProtocolError } from "../../src/core/errors.js";
import { compileCheck, keptWhole, parseJsonBody } from "../../src/http/validate.js";

describe("keptWhole", () => {
  const Record = keptWhole(
    z.object({ id: z.string().min(1), when: z.object({ at: z.string() }).optional() }),
  );

  it("passes the value on whole, unknown fields and all, without copying it", () => {
    const raw = { id: "a", when: { at: "now", tz: "UTC" }, extra: [1, 2] };
    const out = Record.parse(raw);
    expect(out).toBe(raw);
    expect(out.extra).toEqual([1, 2]);
  });

  it("names the field that is wrong, nested paths included", () => {
    expect(() =>
      parseJsonBody(JSON.stringify({ id: "a", when: { at: 3 } }), Record, "x.get"),
    ).toThrow(/x\.get.*when\.at/);
    const error = (() => {
      try {
        parseJsonBody('{"id":""}', Record, "x.get");
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ProtocolError);
    expect(String((error as Error).message)).toMatch(/at id:/);
  });

  it("rejects what is not an object", () => {
    expect(Record.safeParse(null).success).toBe(false);
    expect(Record.safeParse("a").success).toBe(false);
  });
});

describe("compileCheck", () => {
  const schemas = {
    contact: z.object({ id: z.string().min(1), etag: z.string().optional() }),
    message: z.object({
      id: z.string().min(1),
      labelIds: z.array(z.string()).optional(),
      sizeEstimate: z.number().optional(),
      deleted: z.boolean().optional(),
      note: z.string().nullable().optional(),
      any: z.unknown(),
    }),
    counts: z.object({
      length: z.number().int().nonnegative().optional(),
      port: z.number().int().positive().max(65535),
      small: z.number().int().gt(-3).lt(3).nullable().optional(),
      word: z.int32().optional(),
      whole: z.int().optional(),
      unsigned: z.uint32().optional(),
      float: z.float32().optional(),
      ratio: z.number().gte(0.5).lte(1.5).optional(),
    }),
    nested: z.object({
      resourceName: z.string().min(2),
      metadata: z.looseObject({ deleted: z.boolean().optional() }).optional(),
      removed: z.looseObject({ reason: z.string().optional() }).optional(),
    }),
  };

  // Values near each schema's shape, so most runs reach the field checks, and some not.
  const scalar = fc.oneof(
    fc.string({ maxLength: 3 }),
    fc.integer(),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 0.5, 1.5, 65535, 65536),
    fc.constantFrom(2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, -(2 ** 53), 2 ** 53 - 1, 3.5e38, 1e308),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
  );
  const value = fc.oneof(
    { depthSize: "small" },
    scalar,
    fc.array(scalar, { maxLength: 3 }),
    fc.dictionary(fc.constantFrom("deleted", "reason", "x"), scalar),
  );
  const keys = [
    "id",
    "etag",
    "labelIds",
    "sizeEstimate",
    "deleted",
    "note",
    "any",
    "length",
    "port",
    "small",
    "word",
    "whole",
    "unsigned",
    "float",
    "ratio",
    "resourceName",
    "metadata",
    "removed",
  ];
  const record = fc.oneof(
    fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 6 }),
    fc.record({ id: fc.string({ maxLength: 2 }), etag: value }, { requiredKeys: ["id"] }),
    fc.record(
      { port: fc.integer({ min: -2, max: 70_000 }), length: value, small: value, ratio: value },
      { requiredKeys: ["port"] },
    ),
    fc.record(
      { resourceName: fc.string({ maxLength: 3 }), metadata: value, removed: value },
      { requiredKeys: ["resourceName"] },
    ),
    fc.anything(),
  );

  for (const [name, schema] of Object.entries(schemas)) {
    it(`accepts exactly what zod accepts (${name})`, () => {
      const valid = compileCheck(schema);
      expect(valid).toBeDefined();
      fc.assert(
        fc.property(record, (v) => {
          expect(valid?.(v)).toBe(schema.safeParse(v).success);
        }),
        { numRuns: 3000 },
      );
    });
  }

  it("checks every index of an array, holes included, as zod does", () => {
    const list = z.object({ ids: z.array(z.string()) });
    const ids = ["a"];
    ids[2] = "c"; // index 1 is a hole
    const sparse = { ids };
    expect(list.safeParse(sparse).success).toBe(false);
    expect(compileCheck(list)?.(sparse)).toBe(false);
  });

  it("leaves to zod what it cannot express", () => {
    expect(compileCheck(z.string().email())).toBeUndefined();
    expect(compileCheck(z.string().max(3))).toBeUndefined();
    expect(compileCheck(z.number().multipleOf(5))).toBeUndefined();
    expect(compileCheck(z.bigint())).toBeUndefined();
    expect(compileCheck(z.strictObject({ id: z.string() }))).toBeUndefined();
    expect(compileCheck(z.object({ id: z.string().default("a") }))).toBeUndefined();
    expect(compileCheck(z.array(z.string()).min(1))).toBeUndefined();
    expect(compileCheck(z.coerce.number())).toBeUndefined();
  });

  it("keptWhole still names what is wrong when the predicate refuses a record", () => {
    const Contact = keptWhole(schemas.contact);
    const result = Contact.safeParse({ id: "a", etag: 5 });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(["etag"]);
  });
});
