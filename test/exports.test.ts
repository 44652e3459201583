/**
 * The public surface: what `deltasync` and `deltasync/testing` export, and that the package's
 * `exports` map points at files the build produces.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as main from "../src/index.js";
import * as testing from "../src/testing/index.js";

describe("public exports", () => {
  it("deltasync exports exactly the documented runtime names", () => {
    expect(Object.keys(main).sort()).toEqual(
      [
        "ArgumentError",
        "AuthError",
        "ConflictError",
        "CursorStalledError",
        "DeltaSyncError",
        "EVENT_TYPES",
        "ImporterError",
        "KeyedRunner",
        "NotFoundError",
        "NotSupportedError",
        "NotificationHub",
        "OBJECT_TYPES",
        "ProtocolError",
        "MassChangeError",
        "PushBlockedError",
        "PushRaceError",
        "StateError",
        "StateInvalidError",
        "TransientError",
        "applyChange",
        "channels",
        "checkFilter",
        "compositeSource",
        "createFileStateStore",
        "createHttpClient",
        "createLifecycle",
        "createMemoryStateStore",
        "createAccountRegistry",
        "createPostgresMirror",
        "createPostgresStateStore",
        "createSqliteMirror",
        "createSqliteStateStore",
        "createWorker",
        "createSyncQueue",
        "createSyncable",
        "createOutbox",
        "decodeState",
        "describeError",
        "diffSnapshot",
        "encodeState",
        "enqueueSync",
        "errorMessage",
        "exportChanges",
        "filterNotifications",
        "fullSyncState",
        "isTransient",
        "keepRenewed",
        "matchesFilter",
        "parseRetryAfter",
        "push",
        "redact",
        "registerSecret",
        "resolveRetryPolicy",
        "retryDelay",
        "runSync",
        "sameOrigin",
        "sameWindow",
        "settlePushed",
        "snapshotSource",
        "subscribeSink",
        "syncCalendar",
        "syncContacts",
        "syncEmail",
        "syncKeyOf",
        "twoWayImporter",
        "watch",
      ].sort(),
    );
  });

  it("deltasync/testing exports the conformance kit", () => {
    expect(Object.keys(testing).sort()).toEqual(
      [
        "ConformanceError",
        "TwoWayConformanceError",
        "checkConformance",
        "checkTwoWayConformance",
        "checkNotificationFilters",
        "checkStateErrors",
        "diffMirror",
        "mirrorImporter",
      ].sort(),
    );
  });

  it("every error class has a distinct stable code", () => {
    const errors = Object.values(main as Record<string, unknown>).filter(
      (v): v is new (m: string) => Error => typeof v === "function" && v.prototype instanceof Error,
    );
    const codes = errors.map((E) =>
      (E as unknown) === main.ImporterError
        ? "ERR_IMPORTER"
        : (E as unknown) === main.PushBlockedError
          ? new main.PushBlockedError("p", { seq: 1, localId: "l", kind: "update" }, "x").code
          : (E as unknown) === main.MassChangeError
            ? new main.MassChangeError("p", "pull", 30, 40, { share: 0.5, min: 20 }).code
            : (new E("x") as main.DeltaSyncError).code,
    );
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^ERR_[A-Z_]+$/);
  });

  it("every adapter folder is a published subpath with an index", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8"));
    expect(Object.keys(pkg.exports)).toEqual([".", "./testing", "./adapters/*", "./package.json"]);
    for (const adapter of readdirSync("adapters"))
      expect(existsSync(`adapters/${adapter}/index.ts`)).toBe(true);
  });

  it.skipIf(!existsSync("dist/index.js"))(
    "the built package has every entry the exports map names (after npm run build)",
    () => {
      for (const file of [
        "dist/index.js",
        "dist/index.cjs",
        "dist/index.d.ts",
        "dist/testing/index.js",
        "dist/cli/main.js",
      ]) {
        expect(existsSync(file), file).toBe(true);
      }
      for (const adapter of readdirSync("adapters")) {
        for (const ext of ["js", "cjs", "d.ts"])
          expect(existsSync(`dist/adapters/${adapter}/index.${ext}`), `${adapter} ${ext}`).toBe(
            true,
          );
      }
    },
  );
});
