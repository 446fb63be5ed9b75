/**
 * ACME state (README "ACME"): `GET /v1/berth/acme` shows the cluster's accounts (directory,
 * URL, contact: never a key), the leader that orders (the lease), every name being ordered with
 * its order status, failures, next attempt and the CA's last error, and the ACME certificates
 * with their renewal time; `POST
 * /v1/berth/acme/renew/:name` asks for a new certificate for a name now (`berth cert renew`),
 * through the log (`acme.renew`, the leader's time), whatever the current one's age.
 *
 * @module
 */
import type { Hono } from "hono";
import { acmeName, CommandError } from "../store/mod.ts";
import { decodePath, type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { badRequest, HttpError } from "./http_error.ts";
import { renewAt } from "../acme/timing.ts";

/** An ACME certificate as the API shows it (what `berth cert list` shows, with its renewal). */
export interface AcmeCertView {
  name: string;
  serial: string;
  issuer: string;
  notBefore: number;
  notAfter: number;
  /** When the leader orders its successor: two-thirds through its lifetime. */
  renewAt: number;
  fingerprint: string;
}

/** One name as the API shows it. */
export interface AcmeNameView {
  name: string;
  /** The order's status at the CA as last seen, "waiting" before the first order. */
  status: string;
  orderUrl: string | null;
  failures: number;
  /** When the leader tries again (ms since the epoch), 0: at once. */
  nextAttemptMs: number;
  lastError: string;
  lastErrorMs: number;
  renew: boolean;
}

export function acmeRoutes(app: Hono, d: Deps): void {
  const { store } = d;

  app.get("/v1/berth/acme", async (c) => {
    await prepareRead(c, d, {
      index: () => Math.max(store.tableIndex("acme"), store.tableIndex("edge_certs")),
      watch: [{ table: "acme" }, { table: "edge_certs" }],
    });
    const names: AcmeNameView[] = store.acme.names().map((n) => ({
      name: n.name,
      status: n.order?.status ?? "waiting",
      orderUrl: n.order?.url ?? null,
      failures: n.failures,
      nextAttemptMs: n.nextAttemptMs,
      lastError: n.lastError,
      lastErrorMs: n.lastErrorMs,
      renew: n.renew,
    }));
    return c.json({
      accounts: store.acme.accounts().map((a) => ({
        directory: a.directory,
        url: a.url,
        email: a.email,
        createdMs: a.createdMs,
      })),
      lease: store.acme.lease() ?? null,
      names,
      certificates: store.edgeCerts().filter((e) => e.source === "acme").map((e): AcmeCertView => ({
        name: e.name,
        serial: e.serial,
        issuer: e.issuer,
        notBefore: e.notBefore,
        notAfter: e.notAfter,
        renewAt: renewAt(e.notBefore, e.notAfter),
        fingerprint: e.fingerprint,
      })),
    });
  });

  app.post("/v1/berth/acme/renew/:name", async (c) => {
    const raw = decodePath(c.req.param("name"), "name").toLowerCase();
    let name: string;
    try {
      name = acmeName(raw, "name");
    } catch (e) {
      if (e instanceof CommandError) throw badRequest(`renew: ${e.message}`);
      throw e;
    }
    if (store.edgeCert(name)?.source !== "acme" && store.acme.name(name) === undefined) {
      throw new HttpError(
        404,
        `renew: ${name} has no ACME certificate or order (a service with berth.tls=acme ` +
          "routing it gets one by itself)",
      );
    }
    await proposeChecked(d, { type: "acme.renew", name, nowMs: d.now() });
    return c.json({ renew: name });
  });
}
