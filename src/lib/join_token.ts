/**
 * The join token's text form, the one line `--join-token` takes and `--bootstrap` writes to
 * `<data-dir>/join-token`: `<id>.<secret>::sha256:<64 hex>`. The id (6 of `[a-z0-9]`) names the
 * token in `berth token list|revoke`; the secret (32 url-safe characters) is what the joiner
 * proves; the pin is the cluster CA's (kubeadm style), so the joiner checks the cluster it talks
 * to before it sends the secret. A leaf module.
 *
 * @module
 */

/** A token id: 6 lower-case letters or digits. */
export const TOKEN_ID_RE = /^[a-z0-9]{6}$/;
/** A token secret: 32 url-safe base64 characters. */
export const TOKEN_SECRET_RE = /^[A-Za-z0-9_-]{32}$/;
/** A CA pin: `sha256:` and 64 lower-case hex digits. */
export const CA_PIN_RE = /^sha256:[0-9a-f]{64}$/;

/** What a join token looks like, for messages: "expected …". */
export const JOIN_TOKEN_EXPECTED =
  "expected a join token like abc123.<32 characters>::sha256:<64 hex> (berth token create)";

export interface JoinToken {
  id: string;
  secret: string;
  pin: string;
}

/** The token's one-line text form. */
export function formatJoinToken(t: JoinToken): string {
  return `${t.id}.${t.secret}::${t.pin}`;
}

/**
 * The parts of a join token's text (surrounding spaces and a final newline dropped); throws an
 * Error saying what is wrong, never quoting the secret.
 */
export function parseJoinToken(text: string): JoinToken {
  const s = text.trim();
  const sep = s.indexOf("::");
  if (sep < 0) throw new Error("no ::sha256:… CA pin at its end");
  const head = s.slice(0, sep);
  const pin = s.slice(sep + 2);
  if (!CA_PIN_RE.test(pin)) throw new Error("the CA pin after :: is not sha256:<64 hex>");
  const dot = head.indexOf(".");
  const id = dot < 0 ? head : head.slice(0, dot);
  const secret = dot < 0 ? "" : head.slice(dot + 1);
  if (!TOKEN_ID_RE.test(id)) throw new Error("the id before the dot is not 6 of a-z0-9");
  if (!TOKEN_SECRET_RE.test(secret)) {
    throw new Error("the secret after the dot is not 32 url-safe characters");
  }
  return { id, secret, pin };
}

/** A fresh token id from `random` (uniform in [0, n)). */
export function newTokenId(random: (n: number) => number): string {
  const chars = "abcdefghijklmnopqrstuvwxyz0123456789";
  let id = "";
  for (let i = 0; i < 6; i++) id += chars[random(chars.length)];
  return id;
}
