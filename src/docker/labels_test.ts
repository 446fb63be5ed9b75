import assert from "node:assert/strict";
import type { ContainerInfo } from "./container.ts";
import {
  attributes,
  ContainerSettings,
  decodeLabel,
  LABEL_BYTES_MAX,
  LABEL_SPECS,
  LABELS,
  type LabelSpec,
  reportUnknownLabels,
} from "./labels.ts";
import { ROUTE_KEY_INDEX, ROUTE_KEYS, routeKeyCell } from "../store/mod.ts";
import { TEST_ROUTE_INDEX } from "../../test/route_key_fixtures.ts";

function settings(labels: Record<string, string>, env: string[] = []): ContainerSettings {
  const c: ContainerInfo = { Id: "c1", Name: "/web-1", Config: { Labels: labels, Env: env } };
  return new ContainerSettings("web-1", "c1", c);
}

/** The README's label table as [label cell, meaning cell] rows. */
async function readmeLabelRows(): Promise<string[][]> {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => l.startsWith("Labels (Registrator's"));
  assert.ok(start >= 0, "README has no label table");
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "" && rows.length === 0) continue;
    if (!line.startsWith("|")) break;
    rows.push(line.split("|").slice(1, -1).map((c) => c.trim()));
  }
  return rows.slice(2); // header and separator
}

Deno.test("LABELS and ROUTE_KEYS and the README's label table list the same labels, in order, same text", async () => {
  const row = (e: LabelSpec<unknown>) => [
    e.keys.map((k, i) => i === 0 ? `\`${k}=${e.example}\`` : `\`${k}\``).join(", "),
    e.doc,
  ];
  const want = [
    ...LABEL_SPECS.filter((e) => e !== LABELS.attributes).map(row),
    ...ROUTE_KEYS.map((k) => [`\`${routeKeyCell(k)}\``, k.doc]),
    row(LABELS.attributes as LabelSpec<unknown>),
  ];
  assert.deepEqual(await readmeLabelRows(), want);
});

Deno.test("ROUTE_KEYS and LABELS share no key", () => {
  const labelKeys = new Set(LABEL_SPECS.flatMap((e) => e.keys));
  for (const k of ROUTE_KEYS) {
    assert.ok(!labelKeys.has(k.key), k.key);
    for (const l of labelKeys) assert.equal(ROUTE_KEY_INDEX.find(l), undefined, `${l} ${k.key}`);
  }
});

/** A bad value for each label (by first key); every entry that can be bad has one. */
const BAD: Record<string, string[]> = {
  "berth.enable": ["maybe"],
  "berth.service": ["has space", "-lead", "x".repeat(64), "a.b"],
  "SERVICE_<port>_NAME": ["web/1"],
  "SERVICE_ID": ["a b", "a:b"],
  "berth.tags": [Array.from({ length: 65 }, (_, i) => `t${i}`).join(","), "x".repeat(513)],
  "berth.port": ["abc", "0", "70000", "80/sctp"],
  "berth.http.host": ["bad host", "a..b", "-x.com"],
  "berth.http.path": ["api", "/a b"],
  "berth.network": ["my net", "-x", "n".repeat(129)],
  "berth.http.<port>.host": ["bad host", "*.*.x"],
  "berth.http.<port>.path": ["api"],
  "berth.http.<port>.tls": ["letsencrypt"],
  "berth.tcp.port": ["0", "99999", "5432x"],
  "berth.check.http": ["health", "/a\tb"],
  "berth.check.tcp": ["sure"],
  "berth.check.interval": ["often", "50ms", "2d"],
  "berth.check.timeout": ["5", "1ms", "2h"],
  "berth.weight": ["-1", "heavy", "65536", "1.5"],
  "berth.lb": ["fastest"],
  "berth.tls": ["letsencrypt", "acme,manual"],
  "berth.http.proto": ["h3", "grpc-web"],
  "berth.check.grpc": ["yes please"],
  "berth.check.udp": ["a\\q", "\\x4", "end\\", "x".repeat(513)],
  "berth.check.udp.expect": ["\\xZZ", "\\", "y".repeat(513)],
  "berth.http.hsts": ["31536000", "max-age=1y", "max-age=60; nosniff"],
};
/** Entries that accept any value. */
const ANY_VALUE = new Set(["SERVICE_IGNORE", "SERVICE_<port>_IGNORE", "SERVICE_<port>_<KEY>"]);

Deno.test("decodeLabel() bad values of every label: one problem naming label and value, the default", async (t) => {
  for (const spec of LABEL_SPECS) {
    const first = spec.keys[0]!;
    if (ANY_VALUE.has(first)) continue;
    const bad = BAD[first];
    assert.ok(bad !== undefined, `no bad-value case for ${first}`);
    for (const value of bad) {
      await t.step(`${first}=${JSON.stringify(value).slice(0, 40)}`, () => {
        const key = first.replace("<port>", "80");
        const s = settings({ [key]: value });
        const got = decodeLabel(s, spec as LabelSpec<unknown>, 80);
        assert.deepEqual(got, spec.default);
        assert.equal(s.problems.length, 1, JSON.stringify(s.problems));
        const p = s.problems[0]!;
        assert.equal(p.label, key);
        assert.equal(p.container, "web-1");
        const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
        assert.ok(p.message.startsWith(`${key}=${JSON.stringify(shown)}`), p.message);
        assert.match(p.message, /: expected .+; /);
        assert.ok(p.message.endsWith(`; ${spec.onBad}`), p.message);
      });
    }
  }
});

Deno.test("decodeLabel() good values: parsed, first present key wins, labels before env", () => {
  const s = settings(
    { "berth.check.interval": "1m30s", SERVICE_TAGS: "l", "berth.http.host": "A.test, b.test" },
    ["SERVICE_TAGS=e", "SERVICE_80_TAGS=p", "SERVICE_CHECK_INTERVAL=5s", "SERVICE_NAME=api"],
  );
  assert.equal(decodeLabel(s, LABELS.checkInterval), 90_000);
  assert.deepEqual(decodeLabel(s, LABELS.tags, 80), ["p"]);
  assert.deepEqual(decodeLabel(s, LABELS.tags, 81), ["l"]);
  assert.deepEqual(decodeLabel(s, LABELS.tags), ["l"]);
  assert.deepEqual(decodeLabel(s, LABELS.httpHosts), ["a.test", "b.test"]);
  assert.equal(decodeLabel(s, LABELS.service), "api");
  assert.equal(decodeLabel(s, LABELS.lb), null);
  assert.equal(decodeLabel(settings({ "berth.lb": "Least-Conn" }), LABELS.lb), "least_conn");
  assert.equal(decodeLabel(s, LABELS.tls), null);
  assert.equal(decodeLabel(settings({ "berth.tls": " ACME " }), LABELS.tls), "acme");
  assert.equal(decodeLabel(s, LABELS.hsts), null);
  assert.equal(
    decodeLabel(settings({ "berth.http.hsts": "max-age=600;includesubdomains" }), LABELS.hsts),
    "max-age=600; includeSubDomains",
  );
  assert.deepEqual(decodeLabel(settings({ "berth.port": "53/udp" }), LABELS.port), {
    port: 53,
    proto: "udp",
  });
  assert.deepEqual(s.problems, []);
});

Deno.test("decodeLabel() empty values count as absent; berth.* keys are not read from env", () => {
  const s = settings({ "berth.weight": " " }, ["berth.weight=5", "SERVICE_IGNORE="]);
  assert.equal(decodeLabel(s, LABELS.weight), 1);
  assert.equal(decodeLabel(s, LABELS.ignore), false);
  assert.deepEqual(s.problems, []);
});

Deno.test("ContainerSettings.get() refuses a value longer than LABEL_BYTES_MAX with a problem", () => {
  const s = settings({ "berth.service": "a".repeat(LABEL_BYTES_MAX + 1) });
  assert.equal(decodeLabel(s, LABELS.service), null);
  assert.equal(s.problems.length, 1);
  assert.equal(s.problems[0]!.label, "berth.service");
});

Deno.test("attributes() maps other SERVICE_* keys to meta; a set the meta rule refuses is one problem", () => {
  const s = settings({ SERVICE_80_REGION: "us" }, [
    "SERVICE_REGION=eu",
    "SERVICE_OWNER=ops",
    "SERVICE_NAME=web",
    "SERVICE_81_NAME=x",
    "SERVICE_CHECK_TTL=5s",
  ]);
  assert.deepEqual(attributes(s, 80), { region: "us", owner: "ops" });
  assert.deepEqual(attributes(s, 81), { region: "eu", owner: "ops" });
  const many = settings({}, Array.from({ length: 65 }, (_, i) => `SERVICE_K${i}=v`));
  assert.deepEqual(attributes(many, 80), {});
  assert.equal(many.problems.length, 1);
  assert.match(many.problems[0]!.message, /expected at most 64 entries, .*; attributes ignored$/);
  const lb = settings({ "SERVICE_berth.lb": "fastest" });
  assert.deepEqual(attributes(lb, 80), {});
  assert.match(
    lb.problems[0]!.message,
    /berth\.lb: expected round_robin\|least_conn\|p2c\|hash\|sticky_cookie/,
  );
});

Deno.test("attributes() leaves route settings out (their labels fail closed), with one problem each", () => {
  const s = settings({}, [
    "SERVICE_berth.http.auth.basic=alice:x",
    "SERVICE_berth.http.allow=10.0.0.0/8",
    "SERVICE_REGION=eu",
  ]);
  assert.deepEqual(attributes(s, 80), { region: "eu" });
  assert.deepEqual(attributes(s, 81), { region: "eu" });
  assert.deepEqual(s.problems.map((p) => p.message), [
    "SERVICE_berth.http.allow: a route setting is read from its label berth.http.allow only; " +
    "ignored",
    "SERVICE_berth.http.auth.basic: a route setting is read from its label " +
    "berth.http.auth.basic only; ignored",
  ]);
});

Deno.test("reportUnknownLabels() accepts the route settings its index knows", () => {
  const s = settings({ "berth.test.n": "x", "berth.test.h.A": "1", "berth.test.m": "1" });
  reportUnknownLabels(s, TEST_ROUTE_INDEX);
  assert.deepEqual(s.problems.map((p) => p.label), ["berth.test.m"]);
});

Deno.test("reportUnknownLabels() names each berth.* label the table does not know", () => {
  const s = settings({
    "berth.weigth": "5",
    "berth.weight": "5",
    "com.example.x": "1",
    SERVICE_X: "1",
  });
  reportUnknownLabels(s);
  assert.deepEqual(s.problems.map((p) => [p.label, p.message]), [
    ["berth.weigth", "berth.weigth: not a berth label (see the README's label table); ignored"],
  ]);
});
