import { describe, expect, it } from "vitest";
import { cliSource, innerUrl } from "../../adapters/dav/cli.js";
import { ArgumentError } from "../../src/core/errors.js";

describe("dav cli source", () => {
  it.each([
    ["caldav:https://dav.example.com/alice/work/", "caldav", "https://dav.example.com/alice/work/"],
    ["carddav:http://127.0.0.1:5232/", "carddav", "http://127.0.0.1:5232/"],
    ["caldavs://dav.example.com/x/", "caldavs", "https://dav.example.com/x/"],
    ["caldav://127.0.0.1:5232/", "caldav", "http://127.0.0.1:5232/"],
  ])("reads %s", (raw, scheme, target) => {
    const got = innerUrl(new URL(raw));
    expect(got.scheme).toBe(scheme);
    expect(got.target.href).toBe(target);
  });

  it("refuses malformed URLs and passwords in the URL", () => {
    expect(() => innerUrl(new URL("caldav:nothing"))).toThrow(ArgumentError);
    expect(() => innerUrl(new URL("caldav:https://alice:secret@h/"))).toThrow(
      /DELTASYNC_DAV_PASSWORD/,
    );
    expect(cliSource.schemes).toContain("carddav");
  });

  it("refuses a parameter typo before connecting", async () => {
    await expect(
      cliSource.open(new URL("caldav:http://127.0.0.1:1/?scop=hierarchy"), { env: {} }),
    ).rejects.toThrow('caldav: unknown parameter "scop" (known: scope)');
  });
});
