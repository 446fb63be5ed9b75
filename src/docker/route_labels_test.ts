import assert from "node:assert/strict";
import type { ContainerInfo } from "./container.ts";
import { ContainerSettings } from "./labels.ts";
import { ROUTE_LABELS_MAX, routeLabels } from "./route_labels.ts";
import { desiredInstances } from "./desired.ts";
import { TEST_ROUTE_INDEX } from "../../test/route_key_fixtures.ts";
import { TAGS_MAX, validateInstance } from "../store/mod.ts";

function container(labels: Record<string, string>): ContainerInfo {
  return {
    Id: "c1",
    Name: "/web-1",
    Config: { Image: "nginx", Labels: labels },
    State: { Status: "running", Running: true },
    NetworkSettings: { Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] } },
  };
}

function settings(labels: Record<string, string>): ContainerSettings {
  return new ContainerSettings("web-1", "c1", container(labels));
}

Deno.test("routeLabels() good values: canonical text by key; empty values are absent", () => {
  const s = settings({
    "berth.test.n": " 012 ",
    "berth.test.h.X-A": "Hello",
    "berth.test.h.x.b": "up",
    "berth.test.m": "1",
    "berth.test.h.Empty": " ",
    other: "1",
  });
  assert.deepEqual(routeLabels(s, TEST_ROUTE_INDEX), {
    "berth.test.h.X-A": "hello",
    "berth.test.h.x.b": "UP",
    "berth.test.n": "12",
  });
  assert.deepEqual(s.problems, []);
});

Deno.test('routeLabels() a bad value: one problem KEY="value": expected …; onBad, key left out', () => {
  const s = settings({ "berth.test.n": "ten", "berth.test.h.A": "ok" });
  assert.deepEqual(routeLabels(s, TEST_ROUTE_INDEX), { "berth.test.h.A": "ok" });
  assert.deepEqual(s.problems, [{
    container: "web-1",
    containerId: "c1",
    label: "berth.test.n",
    message: 'berth.test.n="ten": expected a whole number; no number',
  }]);
});

Deno.test("routeLabels() a bad or empty security setting fails closed: none, with its problem", () => {
  const s = settings({
    "berth.http.auth.basic": "alice:BjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu",
    "berth.http.allow": " ",
    "berth.http.rewrite": "^/(a /b",
  });
  assert.deepEqual(routeLabels(s), {
    "berth.http.allow": "none",
    "berth.http.auth.basic": "none",
  });
  assert.deepEqual(s.problems.map((p) => p.label).sort(), [
    "berth.http.allow",
    "berth.http.auth.basic",
    "berth.http.rewrite",
  ]);
  assert.match(s.problems.find((p) => p.label === "berth.http.allow")!.message, /403 \(none\)$/);
});

Deno.test("routeLabels() never puts a bad secret setting's value in its problem (a password where a hash belongs)", () => {
  const s = settings({
    "berth.http.auth.basic": "alice:Sup3rSecret!",
    "berth.http.request-header.X-Api-Key": "tok_\u0001abc",
  });
  assert.deepEqual(routeLabels(s), { "berth.http.auth.basic": "none" });
  const lines = s.problems.map((p) => p.message).sort();
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^berth\.http\.auth\.basic \(value hidden\): expected .*alice/);
  assert.match(lines[1]!, /^berth\.http\.request-header\.X-Api-Key \(value hidden\): expected /);
  for (const l of lines) assert.ok(!l.includes("Sup3rSecret") && !l.includes("tok_"), l);
});

Deno.test("routeLabels() two labels naming one header in another case: the first is read, the other a problem", () => {
  const s = settings({ "berth.test.h.X-A": "one", "berth.test.h.x-a": "two" });
  assert.deepEqual(routeLabels(s, TEST_ROUTE_INDEX), { "berth.test.h.X-A": "one" });
  assert.deepEqual(s.problems.map((p) => p.message), [
    "berth.test.h.x-a: names the same header as berth.test.h.X-A (header names ignore case); " +
    "ignored",
  ]);
});

Deno.test("routeLabels() reads at most ROUTE_LABELS_MAX settings, a problem for each other", () => {
  const labels: Record<string, string> = {};
  for (let i = 0; i < ROUTE_LABELS_MAX + 2; i++) labels[`berth.test.h.k${i}`] = "v";
  const s = settings(labels);
  assert.equal(Object.keys(routeLabels(s, TEST_ROUTE_INDEX)).length, ROUTE_LABELS_MAX);
  assert.equal(s.problems.length, 2);
  assert.match(s.problems[0]!.message, /more than 32 route settings; header left out$/);
});

Deno.test("desiredInstances() puts route settings in each instance's meta; a bad one is a problem", () => {
  const d = desiredInstances(
    [container({ "berth.test.n": "007", "berth.test.h.A": "B", "berth.test.h.x.c": "bad?" })],
    { node: "h1", advertise: "10.0.0.5", internal: false, routeKeys: TEST_ROUTE_INDEX },
  );
  const meta = d.instances[0]!.meta;
  assert.equal(meta["berth.test.n"], "7");
  assert.equal(meta["berth.test.h.A"], "b");
  assert.equal(meta["berth.test.h.x.c"], "BAD?");
  assert.deepEqual(d.problems, []);
  const bad = desiredInstances(
    [container({ "berth.test.n": "-1" })],
    { node: "h1", advertise: "10.0.0.5", internal: false, routeKeys: TEST_ROUTE_INDEX },
  );
  assert.equal(bad.instances.length, 1);
  assert.equal(bad.instances[0]!.meta["berth.test.n"], undefined);
  assert.deepEqual(bad.problems.map((p) => p.message), [
    'berth.test.n="-1": expected a whole number; no number',
  ]);
});

Deno.test("desiredInstances() without the route index: route-like labels are unknown labels", () => {
  const d = desiredInstances([container({ "berth.test.n": "7" })], {
    node: "h1",
    advertise: "10.0.0.5",
    internal: false,
  });
  assert.equal(d.instances[0]!.meta["berth.test.n"], undefined);
  assert.deepEqual(d.problems.map((p) => p.label), ["berth.test.n"]);
});

Deno.test("desiredInstances() attributes that do not fit beside route settings in 64 meta pairs: a problem, left out", () => {
  const labels: Record<string, string> = {};
  for (let i = 0; i < 30; i++) labels[`berth.test.h.k${i}`] = "v";
  const env = Array.from({ length: 40 }, (_, i) => `SERVICE_ATTR${i}=x`);
  const c = container(labels);
  c.Config!.Env = env;
  const d = desiredInstances([c], {
    node: "h1",
    advertise: "10.0.0.5",
    internal: false,
    routeKeys: TEST_ROUTE_INDEX,
  });
  const meta = d.instances[0]!.meta;
  assert.ok(Object.keys(meta).length <= TAGS_MAX);
  assert.equal(meta["berth.test.h.k0"], "v");
  assert.equal(meta.attr0, undefined);
  validateInstance(d.instances[0]!);
  assert.deepEqual(d.problems.map((p) => p.message), [
    "40 attributes for port 80/tcp, but only 31 fit beside berth's own meta (at most 64); " +
    "attributes ignored",
  ]);
});

Deno.test("routeLabels() a header list with a bad name keeps removing its good names, with its problem", () => {
  const s = settings({
    "berth.http.request-headers.remove": "Cookie, X-Forwarded-User, Bad Name, Host",
    "berth.http.response-headers.remove": "Content-Length",
  });
  assert.deepEqual(routeLabels(s), {
    "berth.http.request-headers.remove": "cookie,x-forwarded-user",
  });
  assert.deepEqual(s.problems.map((p) => p.label).sort(), [
    "berth.http.request-headers.remove",
    "berth.http.response-headers.remove",
  ]);
  assert.match(s.problems[0]!.message, /the good names are still removed$/);
});
