/**
 * A strict reader of the Prometheus text format 0.0.4 for tests: every line is a `# HELP`,
 * a `# TYPE`, another comment or a sample; a sample's family must have its TYPE line before
 * it, a family's samples come together, names and label names are valid, label values are
 * escaped, values are numbers; a histogram's buckets are cumulative, end with `le="+Inf"` and
 * equal its `_count`. Throws naming the line that breaks a rule.
 *
 * @module
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Family name → its TYPE. */
  types: Map<string, string>;
  samples: Sample[];
  /** Comment lines other than HELP and TYPE. */
  comments: string[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, line: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text)) {
    throw new Error(`bad value ${JSON.stringify(text)} in: ${line}`);
  }
  return Number(text);
}

/** Reads `{a="x",b="y"}` starting at `at`; returns the labels and the index after `}`. */
function parseLabels(s: string, at: number, line: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = at + 1;
  const fail = (why: string) => new Error(`${why} in: ${line}`);
  while (s[i] !== "}") {
    const eq = s.indexOf("=", i);
    if (eq < 0) throw fail("label without =");
    const name = s.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw fail(`bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw fail(`label ${name} twice`);
    if (s[eq + 1] !== '"') throw fail("label value not quoted");
    let v = "";
    let j = eq + 2;
    for (;; j++) {
      const c = s[j];
      if (c === undefined) throw fail("unterminated label value");
      if (c === '"') break;
      if (c === "\n") throw fail("raw newline in label value");
      if (c === "\\") {
        const n = s[++j];
        if (n === "n") v += "\n";
        else if (n === "\\" || n === '"') v += n;
        else throw fail(`bad escape \\${n}`);
      } else v += c;
    }
    labels[name] = v;
    i = j + 1;
    if (s[i] === ",") i++;
    else if (s[i] !== "}") throw fail("expected , or }");
  }
  return [labels, i + 1];
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && types.get(base) === "histogram") return base;
  }
  return undefined;
}

/** Parses `text` strictly (see the module comment). */
export function parseExposition(text: string): Exposition {
  if (text !== "" && !text.endsWith("\n")) throw new Error("text does not end with a newline");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const comments: string[] = [];
  const done = new Set<string>();
  /** Name and labels (sorted) of every sample: a series given twice is refused. */
  const series = new Set<string>();
  let current: string | null = null;
  for (const line of text.split("\n").slice(0, -1)) {
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) {
        comments.push(line);
        continue;
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      if (kind === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) {
          throw new Error(`bad type in: ${line}`);
        }
        if (types.has(name)) throw new Error(`TYPE of ${name} twice`);
        types.set(name, rest);
      }
      continue;
    }
    if (line.trim() === "") throw new Error("empty line");
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`no value in: ${line}`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
    let labels: Record<string, string> = {};
    let at = nameEnd;
    if (line[at] === "{") [labels, at] = parseLabels(line, at, line);
    if (line[at] !== " ") throw new Error(`expected a space before the value in: ${line}`);
    const value = parseValue(line.slice(at + 1), line);
    const fam = familyOf(name, types);
    if (fam === undefined) throw new Error(`sample before its TYPE line: ${line}`);
    if (fam !== current) {
      if (done.has(fam)) throw new Error(`samples of ${fam} not together: ${line}`);
      if (current !== null) done.add(current);
      current = fam;
    }
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(id)) throw new Error(`the same series twice: ${line}`);
    series.add(id);
    samples.push({ name, labels, value });
  }
  checkHistograms(types, samples);
  return { types, samples, comments };
}

function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [fam, type] of types) {
    if (type !== "histogram") continue;
    const groups = new Map<string, Sample[]>();
    for (const s of samples) {
      if (s.name !== `${fam}_bucket`) continue;
      const { le: _, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      let last = -1;
      for (const b of buckets) {
        if (b.value < last) throw new Error(`${fam}${key}: buckets not cumulative`);
        last = b.value;
      }
      if (buckets.at(-1)?.labels.le !== "+Inf") throw new Error(`${fam}${key}: no +Inf bucket`);
      const count = samples.find((s) =>
        s.name === `${fam}_count` && JSON.stringify(s.labels) === key
      );
      if (count?.value !== last) throw new Error(`${fam}${key}: _count is not the +Inf bucket`);
    }
  }
}

/** The value of the sample `name` whose labels include `labels`, summed over the matches. */
export function valueOf(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of e.samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
