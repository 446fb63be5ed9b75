/**
 * Join tokens (`berth token`): `POST /v1/berth/tokens` makes one and answers its one-line form
 * (`<id>.<secret>::sha256:<pin>`) — the only time the secret is ever shown; `GET
 * /v1/berth/tokens` lists them (id, created, expires, uses left, revoked, description: never a
 * secret or hash); `DELETE /v1/berth/tokens/:id` revokes one. The secret is drawn here and only
 * its hash is proposed; the leader stamps the creation time (the expiry counts from it).
 *
 * Body of the POST (every field optional): `{"ttl": "1h", "uses": 3, "description": "rack 4"}`;
 * no ttl: it expires after TOKEN_TTL_DEFAULT_MS (24h, as kubeadm's tokens), `"ttl": "0"`: never;
 * no uses: any number of joins.
 *
 * @module
 */
import type { Hono } from "hono";
import { caPin, hashSecret, randomSecret } from "../pki/mod.ts";
import { randomInt } from "node:crypto";
import { parseDuration } from "../lib/duration.ts";
import { formatJoinToken, newTokenId, TOKEN_ID_RE } from "../lib/join_token.ts";
import { type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { optionalField } from "./fields.ts";
import { badRequest, HttpError, readJsonObject } from "./http_error.ts";
import { TOKEN_TTL_MAX_MS, TOKEN_TTL_MIN_MS, TOKEN_USES_MAX } from "../store/mod.ts";

const WHAT = "join token";
/** Lifetime of a join token made without a ttl: a join token is a root credential, keep it short. */
export const TOKEN_TTL_DEFAULT_MS = 24 * 3_600_000;

export function tokenRoutes(app: Hono, d: Deps): void {
  const { store } = d;

  app.post("/v1/berth/tokens", async (c) => {
    const ca = store.pki.ca();
    if (ca === undefined) {
      throw badRequest(
        "join tokens need the cluster CA; this cluster runs without TLS (--tls off)",
      );
    }
    const body = await readJsonObject(c.req.raw, WHAT);
    const ttl = optionalField(body, "ttl", "string", WHAT);
    let ttlMs: number | null = TOKEN_TTL_DEFAULT_MS;
    if (ttl !== undefined && /^0+[a-z]*$/.test(ttl)) {
      ttlMs = null;
    } else if (ttl !== undefined) {
      try {
        ttlMs = parseDuration(ttl);
      } catch (e) {
        throw badRequest(
          `${WHAT}: ttl ${JSON.stringify(ttl.slice(0, 40))}: ${(e as Error).message}`,
        );
      }
      if (ttlMs < TOKEN_TTL_MIN_MS || ttlMs > TOKEN_TTL_MAX_MS) {
        throw badRequest(`${WHAT}: ttl must be from 1s to ${TOKEN_TTL_MAX_MS / 3_600_000}h`);
      }
    }
    const uses = optionalField(body, "uses", "number", WHAT) ?? null;
    if (uses !== null && (!Number.isInteger(uses) || uses < 1 || uses > TOKEN_USES_MAX)) {
      throw badRequest(`${WHAT}: uses must be an integer in 1..${TOKEN_USES_MAX}`);
    }
    const description = optionalField(body, "description", "string", WHAT) ?? "";
    const id = newTokenId(randomInt);
    const secret = randomSecret();
    await proposeChecked(d, {
      type: "token.create",
      id,
      hash: hashSecret(secret),
      ttlMs,
      uses,
      description,
      nowMs: d.now(),
    });
    const info = store.pki.token(id);
    if (info === undefined) throw new HttpError(500, `${WHAT} ${id} was not stored`);
    return c.json({ ...info, token: formatJoinToken({ id, secret, pin: caPin(ca.certPem) }) });
  });

  app.get("/v1/berth/tokens", async (c) => {
    await prepareRead(c, d, { index: () => store.appliedIndex(), watch: { all: true } });
    return c.json(store.pki.tokens());
  });

  app.delete("/v1/berth/tokens/:id", async (c) => {
    const id = c.req.param("id");
    if (!TOKEN_ID_RE.test(id)) {
      throw badRequest(`${WHAT}: bad id ${JSON.stringify(id.slice(0, 40))}: expected 6 of a-z0-9`);
    }
    if (store.pki.token(id) === undefined) throw new HttpError(404, `no join token ${id}`);
    await proposeChecked(d, { type: "token.revoke", id, nowMs: d.now() });
    return c.json(true);
  });
}
