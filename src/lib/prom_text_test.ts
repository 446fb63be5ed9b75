import assert from "node:assert/strict";
import { parseExposition } from "./_prom_parse.ts";
import {
  escapeLabel,
  family,
  histogramSamples,
  labelText,
  sample,
  sampleValue,
} from "./prom_text.ts";

Deno.test("escapeLabel() escapes backslash, double quote and newline only", () => {
  assert.equal(escapeLabel('a\\b"c\nd é'), 'a\\\\b\\"c\\nd é');
});

Deno.test("labelText() joins pairs in order; none gives an empty string", () => {
  assert.equal(labelText([]), "");
  assert.equal(labelText([["a", "1"], ["b", 'x"']]), '{a="1",b="x\\""}');
});

Deno.test("sampleValue() writes integers exactly and rounds others to 6 decimals", () => {
  assert.equal(sampleValue(12345678901234), "12345678901234");
  assert.equal(sampleValue(0.1 + 0.2), "0.3");
  assert.equal(sampleValue(Infinity), "+Inf");
  assert.equal(sampleValue(NaN), "NaN");
});

Deno.test("histogramSamples() writes cumulative buckets, +Inf, _sum and _count", () => {
  const lines = histogramSamples("h", [["s", "x"]], [0.1, 1], [2, 0, 3], 4.5);
  assert.deepEqual(lines, [
    'h_bucket{s="x",le="0.1"} 2',
    'h_bucket{s="x",le="1"} 2',
    'h_bucket{s="x",le="+Inf"} 5',
    'h_sum{s="x"} 4.5',
    'h_count{s="x"} 5',
  ]);
  const e = parseExposition(family("h", "histogram", "A histogram.", lines));
  assert.equal(e.types.get("h"), "histogram");
  assert.equal(e.samples.length, 5);
});

Deno.test("parseExposition() refuses what the text format does not allow", () => {
  const bad = [
    "x 1\n", // no TYPE before
    "# TYPE x counter\nx{a=1} 1\n", // unquoted value
    '# TYPE x counter\nx{a="1"} one\n', // not a number
    "# TYPE x counter\nx 1", // no final newline
    "# TYPE x counter\n# TYPE x gauge\n", // TYPE twice
    "# TYPE x counter\n# TYPE y counter\nx 1\ny 1\nx 2\n", // family split
    '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_count 2\n',
    '# TYPE x counter\nx{a="\\q"} 1\n', // bad escape
    '# TYPE x counter\nx{a="1",b="2"} 1\nx{b="2",a="1"} 2\n', // the same series twice
  ];
  for (const text of bad) assert.throws(() => parseExposition(text), Error, text);
  assert.equal(
    parseExposition(family("x", "counter", "X.", [sample("x", [], 1)])).samples.length,
    1,
  );
});
