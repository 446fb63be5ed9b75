import assert from "node:assert/strict";
import { FlagError, parseBool, parseFlags, parseIntIn } from "./flags.ts";

const SPECS = [
  { name: "dev", kind: "bool" },
  { name: "node", kind: "string" },
  { name: "help", kind: "bool" },
];

Deno.test("parseFlags() reads --name value, --name=value and bare bool flags", () => {
  const p = parseFlags(["--node", "a", "--dev", "x", "--node=b", "--help=false"], SPECS);
  assert.deepEqual([...p.values], [["node", "b"], ["dev", "true"], ["help", "false"]]);
  assert.deepEqual(p.positionals, ["x"]);
});

Deno.test("parseFlags() joins a repeatable flag's values with commas; others keep the last", () => {
  const specs = [...SPECS, { name: "ttl", kind: "string", repeatable: true }];
  const p = parseFlags(["--ttl", "a=1s", "--node", "x", "--ttl=b=2s,c=3s", "--node", "y"], specs);
  assert.equal(p.values.get("ttl"), "a=1s,b=2s,c=3s");
  assert.equal(p.values.get("node"), "y");
});

Deno.test("parseFlags() takes a flag's one-letter alias: -n 3 for --limit 3", () => {
  const specs = [...SPECS, { name: "limit", kind: "string", short: "n" }];
  assert.deepEqual([...parseFlags(["-n", "3", "x"], specs).values], [["limit", "3"]]);
  assert.throws(() => parseFlags(["-n"], specs), /^FlagError: -n needs a value$/);
  assert.throws(() => parseFlags(["-m", "3"], specs), /unknown flag -m/);
});

Deno.test("parseFlags() takes -h as --help and -- as the end of flags", () => {
  const p = parseFlags(["-h", "--", "--node", "-x"], SPECS);
  assert.deepEqual([...p.values], [["help", "true"]]);
  assert.deepEqual(p.positionals, ["--node", "-x"]);
  assert.throws(() => parseFlags(["-h"], [{ name: "x", kind: "bool" }]), /unknown flag -h/);
});

Deno.test("parseFlags() keeps negative numbers as positionals", () => {
  assert.deepEqual(parseFlags(["-5"], SPECS).positionals, ["-5"]);
});

Deno.test("parseFlags() rejects unknown flags, missing values and, when told, positionals", async (t) => {
  const cases: [string[], RegExp, boolean?][] = [
    [["--nope"], /^unknown flag --nope$/],
    [["-x"], /^unknown flag -x \(flags start with --\)$/],
    [["--node"], /^--node needs a value$/],
    [["stray"], /^unexpected argument "stray" \(flags start with --\)$/, false],
  ];
  for (const [argv, message, positionals] of cases) {
    await t.step(argv.join(" "), () => {
      assert.throws(() => parseFlags(argv, SPECS, { positionals }), (e) => {
        assert.ok(e instanceof FlagError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

Deno.test("parseBool() accepts true/false, 1/0 and yes/no only", () => {
  for (const t of ["true", "1", "yes"]) assert.equal(parseBool(t), true);
  for (const f of ["false", "0", "no"]) assert.equal(parseBool(f), false);
  for (const bad of ["maybe", "", "TRUE", "on"]) {
    assert.throws(() => parseBool(bad), /not a boolean/);
  }
});

Deno.test("parseIntIn() says whether text is not an integer or out of range", () => {
  assert.equal(parseIntIn("0", [0, 10]), 0);
  assert.equal(parseIntIn("10", [0, 10]), 10);
  assert.throws(() => parseIntIn("11", [0, 10]), /^Error: out of range$/);
  for (const bad of ["abc", "", "-1", "1.5", "1e3", " 1", "99999999999999999"]) {
    assert.throws(() => parseIntIn(bad, [0, 10]), /^Error: not an integer$/, bad);
  }
});
