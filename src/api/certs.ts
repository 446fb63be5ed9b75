/**
 * HTTPS certificates (`berth cert`): what the proxy serves, in the replicated store.
 *
 * - `GET /v1/berth/certs`: every certificate (name, names, issuer, notBefore, notAfter, source,
 *   default, serial, fingerprint; never the key, sealed or not), blocking on `?index`.
 * - `GET /v1/berth/certs/:name`: one (404 when there is none).
 * - `PUT /v1/berth/certs/:name` with `{"certPem": "...", "keyPem": "...", "default": true}`:
 *   adds or replaces one. The chain (leaf first) and the key are checked (src/pki/edge_cert.ts:
 *   one clear 400 line otherwise), and the key is sealed with the cluster key BEFORE it is
 *   proposed: the Raft log and the store only ever hold it sealed. Without `default` a
 *   replacement keeps what it was (a new one is not the default); `true` makes it the default
 *   (the old default stops being one), `false` stops it being one.
 * - `DELETE /v1/berth/certs/:name`: removes one (404 when there is none).
 *
 * All need operator rights (acl_routes.ts).
 *
 * @module
 */
import type { Hono } from "hono";
import { NoClusterKeyError, sealEdgeCert } from "../pki/mod.ts";
import { errorText } from "../lib/error_text.ts";
import { type EdgeCert, edgeCertNameProblem } from "../store/mod.ts";
import { decodePath, type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { badRequest, HttpError, readJsonObject } from "./http_error.ts";

const WHAT = "certificate";
const BODY_FIELDS = ["certPem", "keyPem", "default"];

/** A certificate as the API shows it: everything but its key. */
export interface CertView {
  name: string;
  names: string[];
  issuer: string;
  notBefore: number;
  notAfter: number;
  source: "manual" | "acme";
  default: boolean;
  serial: string;
  fingerprint: string;
}

export function certView(c: EdgeCert): CertView {
  return {
    name: c.name,
    names: c.names,
    issuer: c.issuer,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    source: c.source,
    default: c.isDefault,
    serial: c.serial,
    fingerprint: c.fingerprint,
  };
}

function certName(raw: string): string {
  const name = decodePath(raw, WHAT);
  const problem = edgeCertNameProblem(name);
  if (problem !== undefined) {
    throw badRequest(`${WHAT} name ${JSON.stringify(name.slice(0, 80))}: expected ${problem}`);
  }
  return name;
}

/** The PUT body's fields, each checked for its type; unknown fields refused. */
function putBody(
  body: Record<string, unknown>,
): { certPem: string; keyPem: string; isDefault: boolean | undefined } {
  const unknown = Object.keys(body).find((k) => !BODY_FIELDS.includes(k));
  if (unknown !== undefined) {
    throw badRequest(
      `${WHAT}: unknown field ${JSON.stringify(unknown.slice(0, 40))} (expected ${
        BODY_FIELDS.join(", ")
      })`,
    );
  }
  const text = (k: string): string => {
    const v = body[k];
    if (typeof v !== "string" || v === "") throw badRequest(`${WHAT}: ${k} must be PEM text`);
    return v;
  };
  const d = body.default;
  if (d !== undefined && d !== null && typeof d !== "boolean") {
    throw badRequest(`${WHAT}: default must be true or false`);
  }
  return { certPem: text("certPem"), keyPem: text("keyPem"), isDefault: d ?? undefined };
}

export function certRoutes(app: Hono, d: Deps): void {
  const { store, secrets } = d;
  const read = (c: Parameters<typeof prepareRead>[0]) =>
    prepareRead(c, d, {
      index: () => store.tableIndex("edge_certs"),
      watch: { table: "edge_certs" },
    });

  app.get("/v1/berth/certs", async (c) => {
    await read(c);
    return c.json(store.edgeCerts().map(certView));
  });

  app.get("/v1/berth/certs/:name", async (c) => {
    const name = certName(c.req.param("name"));
    await read(c);
    const cert = store.edgeCert(name);
    if (cert === undefined) throw new HttpError(404, `no ${WHAT} ${name}`);
    return c.json(certView(cert));
  });

  app.put("/v1/berth/certs/:name", async (c) => {
    const name = certName(c.req.param("name"));
    const body = putBody(await readJsonObject(c.req.raw, WHAT));
    if (secrets === undefined) {
      throw new HttpError(503, "this agent keeps no cluster key: it cannot store certificates");
    }
    let cert: EdgeCert;
    try {
      cert = sealEdgeCert(secrets, {
        name,
        certPem: body.certPem,
        keyPem: body.keyPem,
        source: "manual",
        isDefault: body.isDefault ?? store.edgeCert(name)?.isDefault ?? false,
        nowMs: d.now(),
      });
    } catch (e) {
      // The box's refusals (no key yet, not the cluster's) are this member's state, not the
      // request's: 503, retry (on another member).
      if (e instanceof NoClusterKeyError) throw new HttpError(503, `${errorText(e)}; retry`);
      throw badRequest(`${WHAT} ${name}: ${errorText(e)}`);
    }
    await proposeChecked(d, { type: "cert.put", cert });
    return c.json(certView(store.edgeCert(name) ?? cert));
  });

  app.delete("/v1/berth/certs/:name", async (c) => {
    const name = certName(c.req.param("name"));
    if (store.edgeCert(name) === undefined) throw new HttpError(404, `no ${WHAT} ${name}`);
    await proposeChecked(d, { type: "cert.rm", name });
    return c.json(true);
  });
}
