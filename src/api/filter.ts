/**
 * Consul's `?filter=` expressions (its go-bexpr language) over the JSON an endpoint answers
 * with: a small recursive-descent parser and an evaluator. No npm package speaks this grammar
 * (the expression parsers there are for other languages), so berth has its own.
 *
 * ```
 * expr     := or
 * or       := and ("or" and)*
 * and      := unary ("and" unary)*
 * unary    := "not" unary | "(" expr ")" | match
 * match    := selector "is" ["not"] "empty"
 *           | selector ("==" | "!=") value
 *           | selector ["not"] ("contains" | "matches") value
 *           | value ["not"] "in" selector
 * selector := name ("." name | "[" string "]")*        Service.Tags, ServiceMeta["a.b"]
 * value    := "double" | `raw` | a bare word (letters, digits, - _ . : /)
 * ```
 *
 * A selector names fields of the answer as Consul's JSON spells them (`Service.Service`,
 * `Checks.Status`, `NodeMeta.env`). Through a list of objects (`Checks`) a match holds when it
 * holds for any element, as in go-bexpr. `contains` / `in` test list membership, map keys, or
 * substrings; `matches` an RE2 regular expression (linear time, as Consul); `is empty` an empty string, list or map. Selectors
 * are checked against a sample of the endpoint's shape when the filter is parsed, so a misspelt
 * field is a 400 even when nothing would be listed.
 *
 * @module
 */

import { RE2JS } from "re2js";

/** Longest filter accepted. */
export const FILTER_CHARS_MAX = 4096;
/** Deepest nesting of parentheses and `not`. */
const DEPTH_MAX = 64;

/** A filter that cannot be parsed or names no field: its message is the 400's line. */
export class FilterError extends Error {
  override name = "FilterError";
}

type Path = string[];

type Node =
  | { op: "or" | "and"; left: Node; right: Node }
  | { op: "not"; expr: Node }
  | { op: "empty"; path: Path; negate: boolean }
  | { op: "==" | "!="; path: Path; value: string }
  | { op: "contains" | "matches"; path: Path; value: string; negate: boolean; re?: RE2JS };

type Token = { kind: "word" | "string" | "op"; text: string; at: number };

const OPS = ["==", "!=", "(", ")", "[", "]", "."];
const WORD_RE = /[A-Za-z0-9_\-:/*@+]/;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op !== undefined) {
      out.push({ kind: "op", text: op, at: i });
      i += op.length;
      continue;
    }
    if (ch === '"' || ch === "`") {
      let j = i + 1;
      let text = "";
      while (j < src.length && src[j] !== ch) {
        if (ch === '"' && src[j] === "\\" && j + 1 < src.length) {
          const next = src[j + 1]!;
          text += next === "n" ? "\n" : next === "t" ? "\t" : next;
          j += 2;
          continue;
        }
        text += src[j];
        j++;
      }
      if (j >= src.length) throw new FilterError(`unterminated string starting at ${i + 1}`);
      out.push({ kind: "string", text, at: i });
      i = j + 1;
      continue;
    }
    if (WORD_RE.test(ch)) {
      let j = i;
      while (j < src.length && WORD_RE.test(src[j]!)) j++;
      out.push({ kind: "word", text: src.slice(i, j), at: i });
      i = j;
      continue;
    }
    throw new FilterError(`unexpected ${JSON.stringify(ch)} at ${i + 1}`);
  }
  return out;
}

class Parser {
  #pos = 0;
  #depth = 0;
  constructor(readonly tokens: Token[]) {}

  #peek(): Token | undefined {
    return this.#tokens[this.#pos];
  }
  get #tokens(): Token[] {
    return this.tokens;
  }
  #isWord(text: string, t = this.#peek()): boolean {
    return t?.kind === "word" && t.text === text;
  }
  #isOp(text: string, t = this.#peek()): boolean {
    return t?.kind === "op" && t.text === text;
  }
  #where(t = this.#peek()): string {
    return t === undefined ? "at the end" : `at ${t.at + 1} (${JSON.stringify(t.text)})`;
  }

  parse(): Node {
    const n = this.#or();
    if (this.#peek() !== undefined) throw new FilterError(`unexpected token ${this.#where()}`);
    return n;
  }

  #or(): Node {
    let left = this.#and();
    while (this.#isWord("or")) {
      this.#pos++;
      left = { op: "or", left, right: this.#and() };
    }
    return left;
  }

  #and(): Node {
    let left = this.#unary();
    while (this.#isWord("and")) {
      this.#pos++;
      left = { op: "and", left, right: this.#unary() };
    }
    return left;
  }

  #unary(): Node {
    if (++this.#depth > DEPTH_MAX) throw new FilterError(`nested deeper than ${DEPTH_MAX}`);
    try {
      if (this.#isWord("not")) {
        this.#pos++;
        return { op: "not", expr: this.#unary() };
      }
      if (this.#isOp("(")) {
        this.#pos++;
        const n = this.#or();
        if (!this.#isOp(")")) throw new FilterError(`expected ")" ${this.#where()}`);
        this.#pos++;
        return n;
      }
      return this.#match();
    } finally {
      this.#depth--;
    }
  }

  #match(): Node {
    const first = this.#peek();
    if (first === undefined) throw new FilterError("expected a match expression at the end");
    // `value [not] in selector`
    const inAt = this.#isWord("not", this.#tokens[this.#pos + 1]) ? 2 : 1;
    if (
      (first.kind === "string" || first.kind === "word") &&
      this.#isWord("in", this.#tokens[this.#pos + inAt])
    ) {
      this.#pos += inAt + 1;
      const path = this.#selector();
      return { op: "contains", path, value: first.text, negate: inAt === 2 };
    }
    const path = this.#selector();
    const t = this.#peek();
    if (this.#isWord("is")) {
      this.#pos++;
      const negate = this.#isWord("not");
      if (negate) this.#pos++;
      if (!this.#isWord("empty")) throw new FilterError(`expected "empty" ${this.#where()}`);
      this.#pos++;
      return { op: "empty", path, negate };
    }
    if (this.#isOp("==") || this.#isOp("!=")) {
      this.#pos++;
      return { op: t!.text as "==" | "!=", path, value: this.#value() };
    }
    const negate = this.#isWord("not");
    if (negate) this.#pos++;
    if (this.#isWord("contains") || this.#isWord("matches")) {
      const op = this.#peek()!.text as "contains" | "matches";
      this.#pos++;
      const value = this.#value();
      if (op === "contains") return { op, path, value, negate };
      let re: RE2JS;
      try {
        // RE2 (linear time, Consul's syntax such as `(?i)`): a JS RegExp on user input can
        // backtrack for seconds on `(a+)+$` and block the agent's one thread.
        re = RE2JS.compile(value);
      } catch {
        throw new FilterError(`bad regular expression ${JSON.stringify(value.slice(0, 80))}`);
      }
      return { op, path, value, negate, re };
    }
    throw new FilterError(
      `expected ==, !=, contains, matches, in or is [not] empty ${this.#where()}`,
    );
  }

  #selector(): Path {
    const t = this.#peek();
    if (t?.kind !== "word" || !/^[A-Za-z_]/.test(t.text)) {
      throw new FilterError(`expected a selector ${this.#where()}`);
    }
    this.#pos++;
    const path = [t.text];
    for (;;) {
      if (this.#isOp(".")) {
        this.#pos++;
        const n = this.#peek();
        if (n?.kind !== "word") throw new FilterError(`expected a field name ${this.#where()}`);
        this.#pos++;
        path.push(n.text);
      } else if (this.#isOp("[")) {
        this.#pos++;
        const n = this.#peek();
        if (n?.kind !== "string") throw new FilterError(`expected a quoted key ${this.#where()}`);
        this.#pos++;
        if (!this.#isOp("]")) throw new FilterError(`expected "]" ${this.#where()}`);
        this.#pos++;
        path.push(n.text);
      } else return path;
    }
  }

  #value(): string {
    const t = this.#peek();
    if (t === undefined || t.kind === "op") {
      throw new FilterError(`expected a value ${this.#where()}`);
    }
    this.#pos++;
    if (t.kind === "string") return t.text;
    // A bare value runs on through dots written without spaces: 10.0.0.1, v1.2.
    let value = t.text;
    let end = t.at + t.text.length;
    for (;;) {
      const dot = this.#peek();
      const next = this.#tokens[this.#pos + 1];
      if (
        !this.#isOp(".", dot) || dot!.at !== end || next?.kind !== "word" || next.at !== end + 1
      ) {
        return value;
      }
      value += `.${next.text}`;
      end = next.at + next.text.length;
      this.#pos += 2;
    }
  }
}

/** A parsed filter: `test(row)` says whether a row of the answer is kept. */
export interface Filter {
  test(row: unknown): boolean;
}

/**
 * Parses `src` and checks its selectors against `sample` (one row of the endpoint's answer, with
 * every field present). Throws FilterError with a one-line reason.
 */
export function parseFilter(src: string, sample: unknown): Filter {
  if (src.length > FILTER_CHARS_MAX) {
    throw new FilterError(`filter is over ${FILTER_CHARS_MAX} characters`);
  }
  const tokens = tokenize(src);
  if (tokens.length === 0) throw new FilterError("empty filter");
  const ast = new Parser(tokens).parse();
  checkSelectors(ast, sample);
  return { test: (row) => evaluate(ast, row) };
}

function checkSelectors(n: Node, sample: unknown): void {
  switch (n.op) {
    case "or":
    case "and":
      checkSelectors(n.left, sample);
      checkSelectors(n.right, sample);
      return;
    case "not":
      checkSelectors(n.expr, sample);
      return;
    default:
      checkPath(n.path, sample);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A path is valid when the sample has it; an empty object in the sample is a map (any key). */
function checkPath(path: Path, sample: unknown): void {
  let v: unknown = sample;
  for (const [n, name] of path.entries()) {
    while (Array.isArray(v) && isObject(v[0])) v = v[0];
    if (isObject(v) && Object.keys(v).length === 0 && n > 0) return; // a map: any key
    if (!isObject(v) || !Object.hasOwn(v, name)) {
      throw new FilterError(`selector ${JSON.stringify(path.join("."))} is not valid`);
    }
    v = v[name];
  }
}

/** Every value the path reaches: a list of objects on the way fans out. */
function resolve(path: Path, row: unknown): unknown[] {
  let vals: unknown[] = [row];
  for (const name of path) {
    const next: unknown[] = [];
    for (const v of vals) {
      const items = Array.isArray(v) && v.some(isObject) ? v : [v];
      for (const item of items) {
        if (isObject(item) && Object.hasOwn(item, name)) next.push(item[name]);
      }
    }
    vals = next;
  }
  return vals;
}

function text(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isObject(v)) return Object.keys(v).length === 0;
  return false;
}

function contains(v: unknown, value: string): boolean {
  if (Array.isArray(v)) return v.some((x) => text(x) === value);
  if (isObject(v)) return Object.hasOwn(v, value);
  if (typeof v === "string") return v.includes(value);
  return false;
}

function evaluate(n: Node, row: unknown): boolean {
  switch (n.op) {
    case "or":
      return evaluate(n.left, row) || evaluate(n.right, row);
    case "and":
      return evaluate(n.left, row) && evaluate(n.right, row);
    case "not":
      return !evaluate(n.expr, row);
    case "empty": {
      const vals = resolve(n.path, row);
      const empty = vals.length === 0 || vals.some(isEmpty);
      return n.negate ? vals.some((v) => !isEmpty(v)) : empty;
    }
    case "==":
      return resolve(n.path, row).some((v) => text(v) === n.value);
    case "!=":
      return resolve(n.path, row).some((v) => text(v) !== n.value) ||
        resolve(n.path, row).length === 0;
    case "contains": {
      const hit = resolve(n.path, row).some((v) => contains(v, n.value));
      return n.negate ? !hit : hit;
    }
    case "matches": {
      const hit = resolve(n.path, row).some((v) => typeof v === "string" && n.re!.test(v));
      return n.negate ? !hit : hit;
    }
  }
}
