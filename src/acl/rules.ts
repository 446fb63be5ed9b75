/**
 * ACL policy rules in Consul's form: the HCL subset Consul's policies are written in, or the same
 * as JSON.
 *
 * ```hcl
 * key_prefix "app/" { policy = "read" }    # every key starting with app/
 * key "app/secret" { policy = "deny" }     # exactly this key
 * service_prefix "" { policy = "read" }    # "" matches everything
 * service "web" { policy = "write" }
 * operator = "read"
 * ```
 *
 * JSON: `{"key_prefix": {"app/": {"policy": "read"}}, "operator": "read"}` (a rule kind may also
 * hold a list of such objects). Rule kinds: `key`, `service`, `node`, `session`, `agent` (exact
 * name) and their `_prefix` forms; `operator` takes a policy directly. Policies: `read`, `write`
 * (implies read), `deny`. How rules decide is authorizer.ts.
 *
 * A leaf module: the store checks policies with it (src/store/acl_commands.ts), so it imports
 * nothing from berth but the leaf src/lib/error_text.ts.
 *
 * @module
 */

import { controlsEscaped } from "../lib/error_text.ts";

export type RulePolicy = "read" | "write" | "deny";
export const RULE_POLICIES: readonly RulePolicy[] = ["read", "write", "deny"];

/** What a segment rule is about (Consul's names; `key` is a KV key). */
export type RuleResource = "key" | "service" | "node" | "session" | "agent";
export const RULE_RESOURCES: readonly RuleResource[] = [
  "key",
  "service",
  "node",
  "session",
  "agent",
];

/** One rule: `key_prefix "a/" { policy = "read" }` is {resource "key", segment "a/", prefix}. */
export interface Rule {
  resource: RuleResource;
  segment: string;
  prefix: boolean;
  policy: RulePolicy;
}

/** A policy's rules, parsed. */
export interface ParsedRules {
  rules: Rule[];
  /** `operator = "…"`; absent when the policy says nothing about it. */
  operator?: RulePolicy;
}

/** Largest rules text accepted. */
export const RULES_BYTES_MAX = 64 * 1024;
/** Most rules in one policy. */
export const RULES_MAX = 1024;
/** Longest segment (a key, a service name…) a rule names. */
export const SEGMENT_CHARS_MAX = 512;

/** Rules that break the syntax or name something unknown; the message is one line. */
export class RulesError extends Error {
  override name = "RulesError";
}

const KINDS: ReadonlyMap<string, { resource: RuleResource; prefix: boolean }> = new Map(
  RULE_RESOURCES.flatMap((r): [string, { resource: RuleResource; prefix: boolean }][] => [
    [r, { resource: r, prefix: false }],
    [`${r}_prefix`, { resource: r, prefix: true }],
  ]),
);

/** Consul rule kinds berth does not enforce: named in the error, so a user knows why. */
const UNSUPPORTED = new Set([
  "acl",
  "keyring",
  "mesh",
  "peering",
  "query",
  "query_prefix",
  "event",
  "event_prefix",
  "identity",
  "identity_prefix",
  "partition",
  "namespace",
]);

const KINDS_EXPECTED = `one of ${[...KINDS.keys()].join(", ")}, operator`;

/** Parses rules text (HCL or JSON, told apart by a leading `{`); throws a one-line RulesError. */
export function parseRules(text: string): ParsedRules {
  if (text.length > RULES_BYTES_MAX) {
    throw new RulesError(`rules: at most ${RULES_BYTES_MAX} characters, got ${text.length}`);
  }
  const out: ParsedRules = { rules: [] };
  const add = (kind: string, segment: string, policy: string, where: string): void => {
    const k = KINDS.get(kind);
    if (k === undefined) throw new RulesError(`${where}: ${unknownKind(kind)}`);
    if (segment.length > SEGMENT_CHARS_MAX) {
      throw new RulesError(`${where}: ${kind} name is over ${SEGMENT_CHARS_MAX} characters`);
    }
    if (out.rules.length >= RULES_MAX) {
      throw new RulesError(`${where}: more than ${RULES_MAX} rules in one policy`);
    }
    out.rules.push({ ...k, segment, policy: rulePolicy(policy, where) });
  };
  const operator = (policy: string, where: string): void => {
    const p = rulePolicy(policy, where);
    out.operator = out.operator === undefined ? p : strongerPolicy(out.operator, p);
  };
  if (text.trimStart().startsWith("{")) parseJson(text, add, operator);
  else parseHcl(text, add, operator);
  return out;
}

/** Of two policies for the same thing, the one that wins: deny, then write, then read. */
export function strongerPolicy(a: RulePolicy, b: RulePolicy): RulePolicy {
  if (a === "deny" || b === "deny") return "deny";
  return a === "write" || b === "write" ? "write" : "read";
}

/** Most characters of a name or value an error message quotes. */
const QUOTED_CHARS_MAX = 40;

/**
 * `s` (its first QUOTED_CHARS_MAX characters) in quotes for a one-line message: JSON's escapes,
 * and U+007F, U+2028 and U+2029, which JSON.stringify leaves as they are.
 */
function quoted(s: string): string {
  return controlsEscaped(JSON.stringify(s.slice(0, QUOTED_CHARS_MAX)));
}

function unknownKind(kind: string): string {
  const shown = quoted(kind);
  return UNSUPPORTED.has(kind)
    ? `rule kind ${shown} is not supported by berth (${KINDS_EXPECTED})`
    : `unknown rule kind ${shown} (expected ${KINDS_EXPECTED})`;
}

function rulePolicy(p: string, where: string): RulePolicy {
  if ((RULE_POLICIES as readonly string[]).includes(p)) return p as RulePolicy;
  throw new RulesError(
    `${where}: policy ${quoted(p)} is not one of read, write, deny`,
  );
}

type AddRule = (kind: string, segment: string, policy: string, where: string) => void;
type AddOperator = (policy: string, where: string) => void;

// ---- JSON ----

function parseJson(text: string, add: AddRule, operator: AddOperator): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // V8 quotes a piece of the text, control characters and line breaks included.
    throw new RulesError(`rules (JSON): ${controlsEscaped((e as Error).message)}`);
  }
  const top = jsonObject(doc, "rules (JSON)");
  for (const [kind, v] of Object.entries(top)) {
    const where = `rules (JSON) ${quoted(kind)}`;
    if (kind === "operator") {
      if (typeof v !== "string") throw new RulesError(`${where}: expected a policy string`);
      operator(v, where);
      continue;
    }
    if (!KINDS.has(kind)) throw new RulesError(`rules (JSON): ${unknownKind(kind)}`);
    for (const group of Array.isArray(v) ? v : [v]) {
      for (const [segment, body] of Object.entries(jsonObject(group, where))) {
        const at = `${where} ${quoted(segment)}`;
        const fields = jsonObject(body, at);
        for (const f of Object.keys(fields)) {
          if (f !== "policy") throw new RulesError(`${at}: unknown field ${quoted(f)}`);
        }
        if (typeof fields.policy !== "string") {
          throw new RulesError(`${at}: expected "policy": "read|write|deny"`);
        }
        add(kind, segment, fields.policy, at);
      }
    }
  }
}

function jsonObject(x: unknown, where: string): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) {
    throw new RulesError(`${where}: expected an object`);
  }
  return x as Record<string, unknown>;
}

// ---- HCL ----

type TokenKind = "ident" | "string" | "{" | "}" | "=" | "," | "end";
interface Token {
  kind: TokenKind;
  text: string;
  line: number;
  col: number;
}

function parseHcl(text: string, add: AddRule, operator: AddOperator): void {
  const tokens = tokenize(text);
  let i = 0;
  const peek = (): Token => tokens[i]!;
  const next = (): Token => tokens[Math.min(i++, tokens.length - 1)]!;
  const expect = (kind: TokenKind, what: string): Token => {
    const t = next();
    if (t.kind !== kind) throw new RulesError(`${at(t)}: expected ${what}, got ${shown(t)}`);
    return t;
  };
  while (peek().kind !== "end") {
    const name = expect("ident", "a rule kind (key_prefix, service, operator…)");
    if (name.text === "operator") {
      expect("=", `"=" after operator`);
      const v = expect("string", "a quoted policy");
      operator(v.text, at(v));
      continue;
    }
    if (!KINDS.has(name.text)) throw new RulesError(`${at(name)}: ${unknownKind(name.text)}`);
    const segment = expect("string", `a quoted name after ${name.text}`);
    if (peek().kind === "=") next(); // `key "a" = { … }` is the same block
    expect("{", `"{" to open the ${name.text} block`);
    let policy: Token | undefined;
    while (peek().kind !== "}") {
      const field = expect("ident", `policy = "read|write|deny" or "}"`);
      if (field.text !== "policy") {
        throw new RulesError(
          `${at(field)}: unknown field ${quoted(field.text)} (only policy)`,
        );
      }
      expect("=", `"=" after policy`);
      policy = expect("string", "a quoted policy");
      if (peek().kind === ",") next();
    }
    const close = next();
    if (policy === undefined) {
      throw new RulesError(
        `${at(close)}: ${name.text} ${quoted(segment.text)} has no policy`,
      );
    }
    add(name.text, segment.text, policy.text, at(policy));
  }
}

const at = (t: Token) => `rules: line ${t.line}, column ${t.col}`;
const shown = (t: Token) =>
  t.kind === "end" ? "the end" : t.kind === "string" ? "a string" : quoted(t.text);

const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  n: "\n",
  t: "\t",
  r: "\r",
};

/** Tokens of the HCL subset; `#`, `//` and `/* … *\/` comments are skipped. */
function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const fail = (msg: string, pos = i): never => {
    throw new RulesError(`rules: line ${line}, column ${pos - lineStart + 1}: ${msg}`);
  };
  while (i < text.length) {
    const ch = text[i]!;
    const col = i - lineStart + 1;
    if (ch === "\n") {
      i++;
      line++;
      lineStart = i;
    } else if (ch === " " || ch === "\t" || ch === "\r" || ch === ";") {
      i++;
    } else if (ch === "#" || (ch === "/" && text[i + 1] === "/")) {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (ch === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) fail("comment /* is never closed");
      for (; i < end + 2; i++) {
        if (text[i] === "\n") {
          line++;
          lineStart = i + 1;
        }
      }
    } else if (ch === "{" || ch === "}" || ch === "=" || ch === ",") {
      out.push({ kind: ch, text: ch, line, col });
      i++;
    } else if (ch === '"') {
      let s = "";
      i++;
      for (;;) {
        const c = text[i];
        if (c === undefined || c === "\n") fail("string is never closed", lineStart + col - 1);
        if (c === '"') break;
        if (c === "\\") {
          const after = text[i + 1] ?? "";
          if (after === "" || after === "\n") {
            fail("string is never closed", lineStart + col - 1);
          }
          const e = ESCAPES[after];
          // Shown escaped, so a control character cannot break the one-line message.
          if (e === undefined) {
            fail(
              `unknown escape \\${controlsEscaped(JSON.stringify(after).slice(1, -1))} in a string`,
            );
          }
          s += e;
          i += 2;
        } else {
          s += c;
          i++;
        }
      }
      i++;
      out.push({ kind: "string", text: s, line, col });
    } else if (/[A-Za-z_]/.test(ch)) {
      const start = i;
      while (i < text.length && /[A-Za-z0-9_-]/.test(text[i]!)) i++;
      out.push({ kind: "ident", text: text.slice(start, i), line, col });
    } else {
      fail(`unexpected ${quoted(ch)}`);
    }
  }
  out.push({ kind: "end", text: "", line, col: i - lineStart + 1 });
  return out;
}
