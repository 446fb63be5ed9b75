import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { AcmeClient, ANSWER_BYTES_MAX } from "./client.ts";
import { AcmeError, PROBLEM } from "./error.ts";
import { generateAccountKey } from "./jws.ts";
import { retryAfterMs, WIRE_LIMITS } from "./wire.ts";
import { createCa } from "../pki/ca.ts";

const CA = "https://ca.test";
const DIRECTORY = {
  newNonce: `${CA}/nonce`,
  newAccount: `${CA}/account`,
  newOrder: `${CA}/order`,
};
const ORDER = {
  status: "pending",
  identifiers: [{ type: "dns", value: "web.example.test" }],
  authorizations: [`${CA}/authz/1`],
  finalize: `${CA}/order/1/finalize`,
};

type Route = (req: { method: string; body: unknown }) => Response;

/** A CA made of routes (path → answer); every answer carries a fresh nonce. */
function fakeCa(routes: Record<string, Route>) {
  const seen: { method: string; path: string; protected?: Record<string, unknown> }[] = [];
  let nonce = 0;
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(String(input));
    const text = typeof init?.body === "string" ? init.body : "";
    const body = text === "" ? undefined : JSON.parse(text);
    const prot = body === undefined
      ? undefined
      : JSON.parse(Buffer.from(body.protected, "base64url").toString());
    seen.push({ method: init?.method ?? "GET", path: url.pathname, protected: prot });
    const route = routes[url.pathname] ?? (() => json(404, { type: "about:blank" }));
    const r = route({ method: init?.method ?? "GET", body });
    const method = init?.method ?? "GET";
    if (method !== "GET" && !r.headers.has("replay-nonce")) {
      r.headers.set("replay-nonce", `nonce${++nonce}`);
    }
    return await Promise.resolve(r);
  };
  return { fetch, seen };
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

const base: Record<string, Route> = {
  "/dir": () => json(200, DIRECTORY),
  "/nonce": () => new Response(null, { status: 200 }),
  "/account": () => json(201, { status: "valid" }, { location: `${CA}/acct/1` }),
};

function client(routes: Record<string, Route>, o: { badNonceRetries?: number } = {}) {
  const ca = fakeCa({ ...base, ...routes });
  const acme = new AcmeClient({
    directoryUrl: `${CA}/dir`,
    accountKey: generateAccountKey(),
    fetch: ca.fetch,
    ...o,
  });
  return { acme, seen: ca.seen };
}

async function rejects(p: Promise<unknown>, type: string, detail: RegExp): Promise<AcmeError> {
  let caught: unknown;
  await p.catch((e) => caught = e);
  assert.ok(caught instanceof AcmeError, `expected an AcmeError, got ${caught}`);
  assert.equal(caught.type, type, caught.message);
  assert.match(caught.detail, detail);
  assert.doesNotMatch(caught.message, /\n/);
  return caught;
}

Deno.test("AcmeClient.directory() refuses malformed directories with a clear AcmeError", async (t) => {
  const cases: [string, Route, RegExp][] = [
    ["not JSON", () => new Response("<html>", { status: 200 }), /not JSON/],
    ["not an object", () => json(200, [1]), /directory is not a JSON object/],
    ["no newNonce", () => json(200, { ...DIRECTORY, newNonce: undefined }), /"newNonce"/],
    [
      "plain http from an https directory",
      () => json(200, { ...DIRECTORY, newOrder: "http://ca.test/order" }),
      /"newOrder" is not an http\(s\) URL/,
    ],
    ["a URL that is not one", () => json(200, { ...DIRECTORY, newAccount: "ca" }), /"newAccount"/],
    [
      "an oversized URL",
      () => json(200, { ...DIRECTORY, newOrder: `${CA}/${"a".repeat(WIRE_LIMITS.urlChars)}` }),
      /"newOrder"/,
    ],
    ["a bad meta", () => json(200, { ...DIRECTORY, meta: "x" }), /directory meta/],
    [
      "external account binding",
      () => json(200, { ...DIRECTORY, meta: { externalAccountRequired: true } }),
      /external account binding/,
    ],
    [
      "an oversized answer",
      () => new Response(new Uint8Array(ANSWER_BYTES_MAX + 1), { status: 200 }),
      /answer over 262144 bytes/,
    ],
  ];
  for (const [name, route, detail] of cases) {
    await t.step(name, async () => {
      const { acme } = client({ "/dir": route });
      await rejects(acme.directory(), PROBLEM.badResponse, detail);
    });
  }
});

Deno.test("AcmeClient.directory() is fetched again after a failure", async () => {
  let calls = 0;
  const { acme } = client({
    "/dir": () => ++calls === 1 ? json(500, { type: "x", detail: "down" }) : json(200, DIRECTORY),
  });
  await assert.rejects(acme.directory(), /down/);
  assert.equal((await acme.directory()).newOrder, DIRECTORY.newOrder);
});

Deno.test("AcmeClient turns a refused connection into an AcmeError of type network", async () => {
  const acme = new AcmeClient({
    directoryUrl: `${CA}/dir`,
    accountKey: generateAccountKey(),
    fetch: () => Promise.reject(new TypeError("connection refused")),
  });
  await rejects(
    acme.directory(),
    PROBLEM.network,
    /GET https:\/\/ca\.test\/dir: connection refused/,
  );
});

Deno.test("AcmeClient gives up on a CA that does not answer within timeoutMs", async () => {
  const silent: typeof fetch = (_input, init) =>
    new Promise((_resolve, reject) => {
      init?.signal?.addEventListener("abort", () => reject(init.signal!.reason));
    });
  const acme = new AcmeClient({
    directoryUrl: `${CA}/dir`,
    accountKey: generateAccountKey(),
    fetch: silent,
    timeoutMs: 20,
  });
  await rejects(acme.directory(), PROBLEM.network, /no answer within 20 ms/);
});

Deno.test("AcmeClient.account() signs with jwk, then later requests with kid and fresh nonces", async () => {
  const { acme, seen } = client({
    "/order": () => json(201, ORDER, { location: `${CA}/order/1` }),
  });
  const account = await acme.account("ops@example.com");
  assert.equal(account.url, `${CA}/acct/1`);
  assert.equal(account.created, true);
  await acme.newOrder(["web.example.test"]);
  const posts = seen.filter((s) => s.method === "POST");
  assert.equal(posts.length, 2);
  assert.ok(posts[0]!.protected!.jwk !== undefined && posts[0]!.protected!.kid === undefined);
  assert.equal(posts[1]!.protected!.kid, `${CA}/acct/1`);
  assert.equal(posts[1]!.protected!.url, `${CA}/order`);
  assert.notEqual(posts[0]!.protected!.nonce, posts[1]!.protected!.nonce);
  assert.equal(seen.filter((s) => s.method === "HEAD").length, 1, "later nonces come from answers");
});

Deno.test("AcmeClient sends a badNonce request again, at most badNonceRetries times", async () => {
  let refusals = 2;
  const badNonce = () =>
    json(400, { type: PROBLEM.badNonce, detail: "JWS has an invalid anti-replay nonce" });
  const { acme, seen } = client({
    "/account": () =>
      refusals-- > 0 ? badNonce() : json(200, { status: "valid" }, { location: `${CA}/acct/1` }),
  });
  assert.equal((await acme.account()).created, false);
  assert.equal(seen.filter((s) => s.path === "/account").length, 3);

  const stubborn = client({ "/account": badNonce }, { badNonceRetries: 3 });
  await rejects(stubborn.acme.account(), PROBLEM.badNonce, /anti-replay nonce/);
  assert.equal(stubborn.seen.filter((s) => s.path === "/account").length, 4);
});

Deno.test("AcmeClient keeps the CA's problem type, status, detail and Retry-After", async () => {
  const { acme } = client({
    "/account": () =>
      json(429, {
        type: PROBLEM.rateLimited,
        detail: "too many new\naccounts",
        subproblems: [{
          type: PROBLEM.malformed,
          detail: "x",
          identifier: { type: "dns", value: "a.test" },
        }],
      }, { "retry-after": "120" }),
  });
  const e = await rejects(acme.account(), PROBLEM.rateLimited, /^too many new accounts$/);
  assert.equal(e.status, 429);
  assert.equal(e.retryAfterMs, 120_000);
  assert.deepEqual(e.subproblems, [{ type: PROBLEM.malformed, detail: "x", identifier: "a.test" }]);
  assert.equal(
    e.message,
    `ACME newAccount: too many new accounts (${PROBLEM.rateLimited}, HTTP 429)`,
  );
});

Deno.test("AcmeClient.findAccount() answers null for accountDoesNotExist", async () => {
  const { acme } = client({
    "/account": () => json(400, { type: PROBLEM.accountDoesNotExist, detail: "no account" }),
  });
  assert.equal(await acme.findAccount(), null);
  assert.equal(acme.accountUrl, undefined);
});

Deno.test("AcmeClient refuses a nonce-less CA and a missing Location", async () => {
  const noNonce = client({
    "/nonce": () => new Response(null, { headers: { "replay-nonce": "bad nonce!" } }),
  });
  await rejects(noNonce.acme.account(), PROBLEM.badResponse, /no usable Replay-Nonce/);
  const noLocation = client({ "/account": () => json(201, { status: "valid" }) });
  await rejects(noLocation.acme.account(), PROBLEM.badResponse, /no Location/);
});

Deno.test("AcmeClient.getOrder() refuses malformed orders and reads Retry-After", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["an unknown status", { ...ORDER, status: "done" }, /"status" is not pending\|ready/],
    ["too many authorizations", {
      ...ORDER,
      authorizations: Array.from({ length: 101 }, (_, i) => `${CA}/authz/${i}`),
    }, /"authorizations" is not a list of at most 100/],
    ["an authorization that is not a URL", { ...ORDER, authorizations: [7] }, /list of URLs/],
    ["an ip identifier", { ...ORDER, identifiers: [{ type: "ip", value: "1.2.3.4" }] }, /"dns"/],
    ["no finalize", { ...ORDER, finalize: undefined }, /"finalize"/],
  ];
  for (const [name, order, detail] of cases) {
    await t.step(name, async () => {
      const { acme } = client({ "/order/1": () => json(200, order) });
      await acme.account();
      await rejects(acme.getOrder(`${CA}/order/1`), PROBLEM.badResponse, detail);
    });
  }
  await t.step("a good order keeps the URL it was fetched from and Retry-After", async () => {
    const { acme } = client({
      "/order/1": () => json(200, { ...ORDER, status: "processing" }, { "retry-after": "3" }),
    });
    await acme.account();
    const order = await acme.getOrder(`${CA}/order/1`);
    assert.equal(order.url, `${CA}/order/1`);
    assert.equal(order.status, "processing");
    assert.deepEqual(order.names, ["web.example.test"]);
    assert.equal(order.retryAfterMs, 3000);
  });
});

Deno.test("AcmeClient.pollOrder() gives up with a timeout AcmeError while the CA is busy", async () => {
  const { acme } = client({ "/order/1": () => json(200, { ...ORDER, status: "processing" }) });
  await acme.account();
  await rejects(
    acme.pollOrder(`${CA}/order/1`, { timeoutMs: 30, intervalMs: 5 }),
    PROBLEM.timeout,
    /still in progress after 30 ms/,
  );
});

Deno.test("AcmeClient.pollAuthorization() throws the failed challenge's problem", async () => {
  const { acme } = client({
    "/authz/1": () =>
      json(200, {
        status: "invalid",
        identifier: { type: "dns", value: "web.example.test" },
        challenges: [{
          type: "http-01",
          url: `${CA}/chal/1`,
          status: "invalid",
          token: "tok",
          error: { type: PROBLEM.connection, detail: "connection refused", status: 400 },
        }],
      }),
  });
  await acme.account();
  const e = await rejects(
    acme.pollAuthorization(`${CA}/authz/1`),
    PROBLEM.connection,
    /^web\.example\.test: connection refused$/,
  );
  assert.equal(e.status, 400);
});

Deno.test("AcmeClient.downloadCertificate() takes a PEM chain and refuses anything else", async (t) => {
  const ca = createCa({ clusterId: "c1", now: new Date() }).certPem;
  const cases: [string, string, RegExp | null][] = [
    ["a chain", `${ca}${ca}`, null],
    ["HTML", "<html>hello</html>", /not a PEM certificate chain/],
    ["text around the PEM", `junk\n${ca}`, /not a PEM certificate chain/],
    [
      "a broken certificate",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      /unreadable/,
    ],
    ["too many certificates", ca.repeat(11), /11 certificates, at most 10/],
  ];
  for (const [name, body, detail] of cases) {
    await t.step(name, async () => {
      const { acme } = client({ "/cert/1": () => new Response(body, { status: 200 }) });
      await acme.account();
      const got = acme.downloadCertificate(`${CA}/cert/1`);
      if (detail === null) assert.equal(await got, body);
      else await rejects(got, PROBLEM.badResponse, detail);
    });
  }
});

Deno.test("AcmeClient refuses bad names, contacts and tokens before sending anything", async () => {
  const { acme, seen } = client({});
  await assert.rejects(acme.newOrder([]), /no names/);
  await assert.rejects(acme.newOrder(["Web.Example"]), /"Web.Example"/);
  await assert.rejects(acme.account("not an email"), /expected an e-mail address/);
  assert.throws(() => acme.keyAuthorization("a.b"), /expected base64url/);
  assert.equal(acme.keyAuthorization("tok"), `tok.${acme.thumbprint}`);
  await assert.rejects(acme.getOrder(`${CA}/order/1`), /no account yet/);
  assert.equal(seen.length, 0);
  assert.throws(
    () => new AcmeClient({ directoryUrl: "ftp://x", accountKey: generateAccountKey() }),
    /expected an https:\/\/ URL/,
  );
});

Deno.test("retryAfterMs() reads seconds and HTTP dates, bounded to a day", () => {
  const now = Date.UTC(2026, 0, 1, 0, 0, 0);
  assert.equal(retryAfterMs(null, now), undefined);
  assert.equal(retryAfterMs("7", now), 7000);
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:01:00 GMT", now), 60_000);
  assert.equal(retryAfterMs("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("9999999999", now), 24 * 3600_000);
  assert.equal(retryAfterMs("soon", now), undefined);
  assert.equal(retryAfterMs("-5", now), undefined);
});
