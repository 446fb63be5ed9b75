import assert from "node:assert/strict";
import { parseTarget } from "./request_target.ts";

Deno.test("parseTarget() splits URLs with or without scheme, and bare paths, and keeps the scheme", () => {
  assert.deepEqual(parseTarget("http://Web.Test:8080/a?b=1"), {
    host: "web.test",
    path: "/a?b=1",
    scheme: "http",
  });
  assert.deepEqual(parseTarget("https://web.test"), {
    host: "web.test",
    path: "/",
    scheme: "https",
  });
  assert.deepEqual(parseTarget("web.test/api/x"), {
    host: "web.test",
    path: "/api/x",
    scheme: "http",
  });
  assert.deepEqual(parseTarget("  /api  "), { host: null, path: "/api", scheme: "http" });
});

Deno.test("parseTarget() keeps the path as written (dot segments, escapes), without a fragment", () => {
  assert.deepEqual(parseTarget("http://h.test/api/../admin"), {
    host: "h.test",
    path: "/api/../admin",
    scheme: "http",
  });
  assert.deepEqual(parseTarget("h.test//x/%61?q=%20#frag"), {
    host: "h.test",
    path: "//x/%61?q=%20",
    scheme: "http",
  });
  assert.deepEqual(parseTarget("h.test?x=1"), { host: "h.test", path: "/?x=1", scheme: "http" });
});

Deno.test("parseTarget() refuses empty, too long, non-HTTP and unparsable targets with one line", () => {
  for (
    const [bad, want] of [
      ["", /empty/],
      ["   ", /empty/],
      [`http://a.test/${"x".repeat(3000)}`, /longer than 2048/],
      ["ftp://a.test/x", /ftp: URLs are not proxied/],
      ["http://[::1/x", /is not a URL/],
      ["http://a b/", /is not a URL/],
    ] as const
  ) {
    assert.throws(
      () => parseTarget(bad),
      (e: Error) => e instanceof RangeError && want.test(e.message),
    );
  }
});
