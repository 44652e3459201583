import { afterEach, describe, expect, it, vi } from "vitest";
import { NotSupportedError } from "../../src/core/errors.js";
import { loadDriver, openSqlite } from "../../src/stores/sqlite-driver.js";

afterEach(() => {
  vi.restoreAllMocks();
});

function fakeRequire(version: string | undefined) {
  const driver = function FakeDatabase() {};
  return (id: string): unknown => {
    if (version === undefined) {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: "MODULE_NOT_FOUND" });
    }
    return id === "better-sqlite3/package.json" ? { version } : driver;
  };
}

describe("the better-sqlite3 driver (an optional peer dependency)", () => {
  it("opens a database with the installed driver", () => {
    const db = openSqlite(":memory:");
    expect(db.prepare("select 1 as one").get()).toEqual({ one: 1 });
    db.close();
  });

  it("names the package and the version to install when it is missing", () => {
    let error: unknown;
    try {
      loadDriver(fakeRequire(undefined), "22.3.0");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as Error).message).toContain("npm install better-sqlite3@13 (Node 22 and later)");
  });

  it("warns on Node 24 with better-sqlite3 12, and not with 13 or on Node 22", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    loadDriver(fakeRequire("12.11.1"), "24.21.0");
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toContain("better-sqlite3 12.11.1 can abort");
    loadDriver(fakeRequire("13.2.0"), "24.21.0");
    loadDriver(fakeRequire("12.11.1"), "22.23.3");
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it("passes on any other load failure unchanged", () => {
    const broken = new Error("invalid ELF header");
    expect(() =>
      loadDriver(() => {
        throw broken;
      }),
    ).toThrow(broken);
  });
});
