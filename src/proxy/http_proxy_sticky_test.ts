import assert from "node:assert/strict";
import { type Backend, request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { Balancer, type Target } from "./balancer.ts";
import { stickyToken } from "./rendezvous.ts";
import { unusedPort } from "../../test/ports.ts";

/** web-a on a closed port, web-b and web-c answering with their name. */
async function oneDown(
  meta: Record<string, string>,
): Promise<{ stores: () => TestStore; backends: Backend[] }> {
  const closed = await unusedPort();
  const b = await startBackend("b");
  const c = await startBackend("c");
  const stores = () => {
    const ts = new TestStore();
    ts.register(spec({ id: "web-a", port: closed, meta }));
    ts.register(spec({ id: "web-b", port: b.port, meta }));
    ts.register(spec({ id: "web-c", port: c.port, meta }));
    return ts;
  };
  return { stores, backends: [b, c] };
}

const from = (body: string) => body.split(" ")[0]!;

Deno.test("HttpProxy sticky cookie: a failed try on the cookie's instance goes on, and the cookie moves to the one that answered", async () => {
  const { stores, backends } = await oneDown({ "berth.lb": "sticky_cookie" });
  try {
    for (let proxy = 0; proxy < 2; proxy++) {
      await withProxy(stores(), {}, async (port) => {
        const cookie = `berth_web=${stickyToken("web-a")}`;
        const r = await request(port, "/", { headers: { cookie } });
        assert.equal(r.status, 200);
        const answered = from(r.body);
        assert.ok(answered === "b" || answered === "c", r.body);
        assert.equal(
          r.headers["set-cookie"]?.[0]?.split(";")[0],
          `berth_web=${stickyToken(`web-${answered}`)}`,
        );
      });
    }
  } finally {
    await Promise.all(backends.map((b) => b.close()));
  }
});

Deno.test("HttpProxy with hash: a key whose instance fails goes to its second choice on every proxy", async () => {
  const meta = { "berth.lb": "hash", "berth.lb.hash": "header:X-User" };
  const { stores, backends } = await oneDown(meta);
  // Rendezvous scores depend only on the key and the instance ids.
  const ids: Target[] = ["web-a", "web-b", "web-c"].map((id) => ({
    id,
    address: "x",
    port: 1,
    weight: 1,
    key: id,
  }));
  const hrw = new Balancer("hash", ids);
  const user = Array.from({ length: 50 }, (_, i) => `user${i}`).find((k) =>
    hrw.peek(undefined, k)!.id === "web-a"
  )!;
  const second = hrw.peek((t) => t.id === "web-a", user)!.id;
  try {
    for (let proxy = 0; proxy < 2; proxy++) {
      await withProxy(stores(), {}, async (port) => {
        const r = await request(port, "/", { headers: { "x-user": user } });
        assert.equal(r.status, 200);
        assert.equal(`web-${from(r.body)}`, second, `proxy ${proxy}`);
      });
    }
  } finally {
    await Promise.all(backends.map((b) => b.close()));
  }
});

Deno.test("HttpProxy sticky cookie: of two cookies of the name the one naming an instance counts; a new one comes with Cache-Control: private", async () => {
  const b = await startBackend("b");
  const c = await startBackend("c");
  const ts = new TestStore();
  const meta = { "berth.lb": "sticky_cookie" };
  ts.register(spec({ id: "web-b", port: b.port, meta }));
  ts.register(spec({ id: "web-c", port: c.port, meta }));
  try {
    await withProxy(ts, {}, async (port) => {
      // A stale Domain cookie before the good host-only one (a browser sends both).
      for (const good of ["b", "c"]) {
        const cookie = `berth_web=0123456789abcdef; berth_web=${stickyToken(`web-${good}`)}`;
        for (let i = 0; i < 3; i++) {
          const r = await request(port, "/", { headers: { cookie } });
          assert.equal(from(r.body), good);
          assert.equal(r.headers["set-cookie"], undefined, "not set again");
        }
      }
      const fresh = await request(port, "/");
      assert.ok(fresh.headers["set-cookie"] !== undefined);
      assert.equal(fresh.headers["cache-control"], "private");
    });
  } finally {
    await Promise.all([b.close(), c.close()]);
  }
});
