import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { encodeBody, FrameReader, joinFrames } from "./_frame.ts";
import { RawTls, recordingProxy, type TestCa, testCa } from "./_tls_testing.ts";
import {
  type CertInfo,
  type Hello,
  INBOUND_CONNECTIONS_MAX,
  type Peer,
  PROTOCOL_VERSION,
  type TlsCredentials,
  Transport,
  TransportError,
  type TransportOptions,
} from "./transport.ts";
import { waitFor } from "../../test/wait.ts";

interface Node {
  t: Transport;
  id: Hello;
  addr: string;
  name: string;
  creds: TlsCredentials & { serial?: string };
  /** When set, credentials() throws this. */
  credsError: string | null;
  msgs: { from: Peer; body: unknown }[];
  reqs: { from: Peer; body: unknown }[];
  logs: string[];
  /** Every verifyPeer call: hello, cert, inbound. */
  verified: { hello: Hello; cert: CertInfo | null; inbound: boolean }[];
  /** verifyPeer answers this reason for the calls it matches. */
  refuse: (p: { hello: Hello; cert: CertInfo | null; inbound: boolean }) => string | null;
}

function ca(): TestCa {
  return testCa();
}

async function node(
  c: TestCa | null,
  name: string,
  nodeId: number,
  o: Partial<TransportOptions> & { host?: string } = {},
): Promise<Node> {
  const n: Node = {
    t: null as unknown as Transport,
    id: { clusterId: "c1", nodeId, address: "" },
    addr: "",
    name,
    creds: c === null ? { keyPem: "", certPem: "", caPem: "" } : c.issue(name),
    msgs: [],
    reqs: [],
    logs: [],
    verified: [],
    refuse: () => null,
    credsError: null,
  };
  n.t = new Transport({
    listen: { host: o.host ?? "127.0.0.1", port: 0 },
    self: () => n.id,
    onMessage: (from, body) => n.msgs.push({ from, body }),
    onRequest: (from, body) => {
      n.reqs.push({ from, body });
      return Promise.resolve({ echo: body, certNode: from.cert?.node ?? from.cert });
    },
    log: (line) => n.logs.push(line),
    backoffMsMin: 10,
    backoffMsMax: 50,
    ...(c === null ? {} : {
      tls: {
        credentials: () => {
          if (n.credsError !== null) throw new Error(n.credsError);
          return n.creds;
        },
        verifyPeer: (p) => {
          n.verified.push(p);
          return n.refuse(p);
        },
      },
    }),
    ...o,
  });
  await n.t.start();
  n.addr = `${n.t.address.host}:${n.t.address.port}`;
  n.id.address = n.addr;
  return n;
}

async function closeAll(...nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.t.close()));
}

const hello = { k: "hello", v: PROTOCOL_VERSION, clusterId: "", nodeId: 0, address: "" };

Deno.test("Transport with tls carries messages and requests both ways, naming the peer's certificate", async () => {
  const c = ca();
  const a = await node(c, "alpha", 1);
  const b = await node(c, "beta", 2, { host: "127.0.0.2" });
  for (let i = 0; i < 1000; i++) {
    assert.equal(a.t.send(b.addr, { i }), true);
    assert.equal(b.t.send(a.addr, { i }), true);
  }
  await waitFor("1000 messages each way", () => a.msgs.length >= 1000 && b.msgs.length >= 1000);
  for (const [n, sender] of [[a, b], [b, a]] as const) {
    n.msgs.forEach((m, i) => assert.deepEqual((m.body as { i: number }).i, i));
    assert.equal(n.msgs[0]!.from.address, sender.addr);
    assert.equal(n.msgs[0]!.from.cert?.node, sender.name);
    assert.equal(n.msgs[0]!.from.cert?.clusterId, "c1");
  }
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
  const got = await a.t.request(b.addr, { t: "echo", big }) as {
    echo: { big: Uint8Array };
    certNode: string;
  };
  assert.deepEqual(got.echo.big, big);
  assert.equal(got.certNode, "alpha");
  // Both sides verified the other once per connection: listener on the hello, dialer on the welcome.
  assert.deepEqual(
    b.verified.map((v) => `${v.inbound} ${v.hello.address} ${v.cert?.node}`).sort(),
    [`false ${a.addr} alpha`, `true ${a.addr} alpha`],
  );
  assert.deepEqual(a.logs, []);
  assert.deepEqual(b.logs, []);
  await closeAll(a, b);
});

Deno.test("Transport with tls refuses a peer whose certificate another CA issued, both ways", async () => {
  const ours = ca();
  const theirs = ca();
  const b = await node(ours, "beta", 2);
  const evil = await node(ours, "evil", 3);
  // It trusts our CA but presents a certificate of another.
  evil.creds = { ...theirs.issue("evil"), caPem: ours.caPem };
  // Dialing in with a certificate of another CA: the listener refuses before any frame.
  await assert.rejects(
    evil.t.request(b.addr, { t: "echo" }, { timeoutMs: 2000 }),
    (e: Error) => e instanceof TransportError,
  );
  await waitFor("b's refusal", () => b.logs.length > 0);
  assert.match(b.logs[0]!, /^cluster: refused 127\.0\.0\.1:\d+: .*certificate/);
  assert.deepEqual(b.reqs, []);
  assert.deepEqual(b.verified, []);
  // Dialing out to a listener of another CA: the dialer's handshake fails.
  await assert.rejects(
    b.t.request(evil.addr, { t: "echo" }, { timeoutMs: 2000 }),
    (e: Error) => e instanceof TransportError && /cannot connect/.test(e.message),
  );
  assert.deepEqual(evil.reqs, []);
  await closeAll(b, evil);
});

Deno.test("Transport with tls refuses an expired certificate, both ways", async () => {
  const c = testCa("c1", new Date(Date.now() - 24 * 3_600_000));
  const b = await node(c, "beta", 2);
  const old = await node(c, "old", 3);
  old.creds = c.issue("old", { now: new Date(Date.now() - 3 * 3_600_000) });
  await assert.rejects(
    old.t.request(b.addr, { t: "echo" }, { timeoutMs: 2000 }),
    (e: Error) => e instanceof TransportError,
  );
  await waitFor("b's refusal", () => b.logs.length > 0);
  assert.match(
    b.logs[0]!,
    /^cluster: refused 127\.0\.0\.1:\d+: certificate of old expired at /,
  );
  await assert.rejects(
    b.t.request(old.addr, { t: "echo" }, { timeoutMs: 2000 }),
    (e: Error) => e instanceof TransportError && /cannot connect/.test(e.message),
  );
  assert.deepEqual(b.reqs, []);
  assert.deepEqual(old.reqs, []);
  // A current certificate of the same CA is accepted.
  old.creds = c.issue("old");
  await old.t.request(b.addr, { t: "echo" });
  await b.t.request(old.addr, { t: "echo" });
  await closeAll(b, old);
});

Deno.test("Transport with tls serves pki.ca and pki.enroll to a peer without a certificate, and nothing else", async (t) => {
  const c = ca();
  const b = await node(c, "beta", 2);
  await t.step("pki.ca and pki.enroll are answered, with cert null", async () => {
    const raw = new RawTls(b.t.address.port);
    raw.frame({ ...hello, address: "127.0.0.9:8300" });
    raw.frame({ k: "req", id: 1, b: { t: "pki.ca" } });
    await waitFor("welcome and a response", () => raw.frames.length === 2);
    // One request at a time (ANONYMOUS_REQUESTS_MAX), as enroll.ts makes them.
    raw.frame({ k: "req", id: 2, b: { t: "pki.enroll", token: "x" } });
    await waitFor("a second response", () => raw.frames.length === 3);
    assert.equal((raw.frames[0] as { k: string }).k, "welcome");
    assert.deepEqual(raw.frames[1], {
      k: "res",
      id: 1,
      b: { echo: { t: "pki.ca" }, certNode: null },
    });
    assert.equal((raw.frames[2] as { id: number }).id, 2);
    assert.deepEqual(b.reqs.map((r) => r.from.cert), [null, null]);
    assert.deepEqual(b.verified.map((v) => [v.cert, v.inbound]), [[null, true]]);
    assert.deepEqual(b.logs, []);
    assert.deepEqual(b.t.connected(), [], "an anonymous peer is not a connected member");
    await raw.close();
  });
  const cases: [string, unknown, RegExp][] = [
    ["a message", { k: "msg", b: { t: "pki.ca" } }, /a message from a peer without a certificate/],
    [
      "a propose request",
      { k: "req", id: 3, b: { t: "propose" } },
      /request "propose" from a peer/,
    ],
    ["a request without a kind", { k: "req", id: 4, b: [1] }, /request without a kind from a/],
  ];
  for (const [name, frame, reason] of cases) {
    await t.step(`${name} closes the connection with one log line`, async () => {
      b.logs.length = 0;
      const before = b.reqs.length;
      const raw = new RawTls(b.t.address.port);
      raw.frame(hello);
      await waitFor("the welcome", () => raw.frames.length === 1);
      raw.frame(frame);
      raw.frame({ k: "req", id: 9, b: { t: "pki.ca" } });
      await waitFor("the connection closed", () => raw.closed);
      assert.deepEqual(raw.frames.map((f) => (f as { k: string }).k), ["welcome"]);
      assert.equal(b.reqs.length, before);
      assert.deepEqual(b.msgs, []);
      assert.equal(b.logs.length, 1, b.logs.join("\n"));
      assert.match(b.logs[0]!, /^cluster: closed connection from 127\.0\.0\.1:\d+: /);
      assert.match(b.logs[0]!, reason);
      await raw.close();
    });
  }
  await closeAll(b);
});

Deno.test("Transport with tls: a verifyPeer refusal closes the connection and is logged once, on either side", async (t) => {
  const c = ca();
  const a = await node(c, "alpha", 1);
  const b = await node(c, "beta", 2);
  await t.step("the listener refuses the dialer's certificate", async () => {
    b.refuse = (p) => p.inbound && p.cert?.node === "alpha" ? "node alpha is revoked" : null;
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        a.t.request(b.addr, { t: "echo" }),
        (e: Error) =>
          e instanceof TransportError && /rejected: node alpha is revoked/.test(e.message),
      );
    }
    assert.deepEqual(b.reqs, []);
    assert.equal(b.verified.length, 3);
    assert.equal(b.logs.length, 1, b.logs.join("\n"));
    assert.match(
      b.logs[0]!,
      /^cluster: rejected connection from 127\.0\.0\.1:\d+: node alpha is revoked$/,
    );
    assert.equal(a.logs.length, 1, a.logs.join("\n"));
    assert.equal(a.logs[0]!, `cluster: connection to ${b.addr} rejected: node alpha is revoked`);
    b.refuse = () => null;
  });
  await t.step("the dialer refuses the listener's certificate", async () => {
    a.logs.length = 0;
    b.logs.length = 0;
    const c2 = await node(c, "gamma", 3);
    c2.refuse = (p) =>
      !p.inbound && p.cert?.node === "beta" ? "not the member at this address" : null;
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        c2.t.request(b.addr, { t: "echo" }),
        (e: Error) =>
          e instanceof TransportError && /not the member at this address/.test(e.message),
      );
    }
    assert.deepEqual(b.reqs, []);
    assert.deepEqual(c2.logs, [
      `cluster: refused connection to ${b.addr}: not the member at this address`,
    ]);
    await closeAll(c2);
  });
  await closeAll(a, b);
});

Deno.test("Transport with tls uses renewed credentials for the next connection", async () => {
  const c = ca();
  const a = await node(c, "alpha", 1);
  const b = await node(c, "beta", 2);
  await a.t.request(b.addr, { t: "echo" });
  const serials = (n: Node, inbound: boolean) =>
    n.verified.filter((v) => v.inbound === inbound).map((v) => v.cert?.serial);
  const [aFirst] = serials(b, true);
  const [bFirst] = serials(a, false);
  assert.equal(aFirst, a.creds.serial);
  assert.equal(bFirst, b.creds.serial);
  a.creds = c.issue("alpha");
  b.creds = c.issue("beta");
  // A new connection (b drops the one from alpha): both present their new certificates.
  b.t.dropPeer("alpha");
  await waitFor("a request on a new connection", async () => {
    await a.t.request(b.addr, { t: "echo" });
    return serials(b, true).length === 2;
  });
  assert.notEqual(serials(b, true)[1], aFirst);
  assert.equal(serials(b, true)[1], a.creds.serial);
  assert.notEqual(serials(a, false)[1], bFirst);
  assert.equal(serials(a, false)[1], b.creds.serial);
  await closeAll(a, b);
});

Deno.test("Transport.dropPeer() closes every connection whose certificate names the node, at once", async () => {
  const c = ca();
  const a = await node(c, "alpha", 1);
  const b = await node(c, "beta", 2);
  a.t.send(b.addr, "a→b");
  b.t.send(a.addr, "b→a");
  await waitFor("both ways", () => a.msgs.length === 1 && b.msgs.length === 1);
  assert.deepEqual(b.t.connected(), [a.addr]);
  b.refuse = (p) => p.cert?.node === "alpha" ? "node alpha is revoked" : null;
  b.t.dropPeer("alpha");
  b.t.dropPeer("nobody");
  assert.deepEqual(b.t.connected(), []);
  assert.deepEqual(
    b.logs.map((l) => l.replace(/:\d+:/, ":PORT:")).sort(),
    [
      `cluster: closed connection from 127.0.0.1:PORT: certificate of node alpha dropped`,
      `cluster: closed connection to ${
        a.addr.replace(/:\d+$/, "")
      }:PORT: certificate of node alpha dropped`,
    ].sort(),
  );
  // Both re-dials meet the refusal now: nothing more flows either way.
  await waitFor("refusals on both sides", () => {
    a.t.send(b.addr, "after");
    b.t.send(a.addr, "after");
    return b.logs.some((l) => l.includes("rejected connection from")) &&
      b.logs.some((l) => l.includes("refused connection to"));
  }).catch((e) => {
    throw new Error(`${e.message}\n${b.logs.join("\n")}\n--\n${a.logs.join("\n")}`);
  });
  assert.equal(a.msgs.length, 1);
  assert.equal(b.msgs.length, 1);
  await closeAll(a, b);
});

Deno.test("Transport with tls closes a plain-TCP client before answering any frame, and a plain listener closes it", async () => {
  const c = ca();
  const b = await node(c, "beta", 2);
  const plain = await node(null, "plain", 3);
  const raw = connect({ host: "127.0.0.1", port: b.t.address.port });
  const frames: unknown[] = [];
  const reader = new FrameReader(1 << 20);
  let badStream: string | null = null;
  raw.on("error", () => {});
  raw.on("data", (chunk: Uint8Array) => {
    badStream ??= reader.push(chunk, (body) => {
      frames.push(body);
      return true;
    });
  });
  const closed = new Promise((r) => raw.on("close", r));
  raw.on("connect", () => {
    raw.write(joinFrames([encodeBody({ ...hello, clusterId: "c1", nodeId: 3 })]));
    raw.write(joinFrames([encodeBody({ k: "req", id: 1, b: { t: "pki.ca" } })]));
  });
  await closed;
  assert.deepEqual(frames, []);
  assert.deepEqual(b.reqs, []);
  await assert.rejects(
    plain.t.request(b.addr, { t: "pki.ca" }, { timeoutMs: 2000 }),
    TransportError,
  );
  assert.deepEqual(b.reqs, []);
  assert.ok(b.logs.length >= 1, "a log line");
  assert.match(b.logs[0]!, /^cluster: refused 127\.0\.0\.1:\d+: TLS handshake failed: /);
  // The other way round: a TLS dialer's handshake is garbage to a plain listener.
  await assert.rejects(
    b.t.request(plain.addr, { t: "pki.ca" }, { timeoutMs: 2000 }),
    TransportError,
  );
  assert.deepEqual(plain.reqs, []);
  assert.ok(
    plain.logs.some((l) => /^cluster: closed connection from .*exceeds/.test(l)),
    plain.logs.join("\n"),
  );
  await closeAll(b, plain);
});

Deno.test("Transport with tls sends nothing in clear on the wire (without tls it does)", async () => {
  const c = ca();
  const secret = "PAYLOAD-7f3a9c-never-in-clear";
  for (const tls of [true, false]) {
    const a = await node(tls ? c : null, "alpha", 1);
    const b = await node(tls ? c : null, "beta", 2);
    const proxy = await recordingProxy(b.t.address.port);
    const via = `127.0.0.1:${proxy.port}`;
    const got = await a.t.request(via, { t: "echo", secret }) as { echo: { secret: string } };
    assert.equal(got.echo.secret, secret);
    a.t.send(via, { secret });
    await waitFor("the message", () => b.msgs.length === 1);
    const wire = proxy.bytes();
    assert.ok(wire.length > 0);
    assert.equal(
      wire.includes(secret),
      !tls,
      `tls ${tls}: payload in clear: ${wire.includes(secret)}`,
    );
    // Without tls the hello names the sender's address; with TLS 1.3 even the certificates
    // (which name the nodes) are encrypted.
    assert.equal(wire.includes(a.addr), !tls);
    if (tls) assert.ok(!wire.includes("alpha") && !wire.includes("beta"));
    await closeAll(a, b);
    await proxy.close();
  }
});

Deno.test("Transport with tls fails with one line when the credentials are missing or unusable", async () => {
  const c = ca();
  const one = c.issue("one");
  const other = c.issue("other");
  const cases: [TlsCredentials, RegExp][] = [
    [{ ...one, keyPem: "nope" }, /unusable TLS credentials: bad private key: /],
    [{ ...one, certPem: "nope" }, /unusable TLS credentials: bad certificate: /],
    [{ ...one, keyPem: other.keyPem }, /unusable TLS credentials: the private key is not the/],
    [{ ...one, caPem: "" }, /unusable TLS credentials: bad CA certificate: /],
  ];
  for (const [creds, reason] of cases) {
    const broken = new Transport({
      listen: { host: "127.0.0.1", port: 0 },
      self: () => ({ clusterId: "c1", nodeId: 1, address: "" }),
      onMessage: () => {},
      onRequest: () => Promise.resolve(null),
      tls: { credentials: () => creds, verifyPeer: () => null },
    });
    await assert.rejects(broken.start(), (e: Error) => {
      assert.match(e.message, /^cluster: cannot listen on 127\.0\.0\.1:0: /);
      assert.match(e.message, reason);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    await broken.close();
  }
  const a = await node(c, "alpha", 1);
  const b = await node(c, "beta", 2);
  b.credsError = "node.crt is gone";
  for (let i = 0; i < 2; i++) {
    await assert.rejects(a.t.request(b.addr, { t: "echo" }, { timeoutMs: 2000 }), TransportError);
  }
  await assert.rejects(
    b.t.request(a.addr, { t: "echo" }, { timeoutMs: 2000 }),
    /cannot connect to .*: no TLS credentials: node\.crt is gone/,
  );
  assert.deepEqual(b.logs.filter((l) => l.includes("refused a connection")), [
    "cluster: refused a connection: no TLS credentials: node.crt is gone",
  ]);
  assert.deepEqual(b.reqs, []);
  assert.deepEqual(a.reqs, []);
  await closeAll(a, b);
});

Deno.test("Transport closes connections past INBOUND_CONNECTIONS_MAX, counting those waiting for a hello (plain TCP)", async () => {
  // With TLS, handshakes in progress have limits of their own (transport_limits_test.ts).
  const c = ca();
  for (const tls of [false]) {
    const a = await node(tls ? c : null, "alpha", 1);
    const b = await node(tls ? c : null, "beta", 2);
    // Silent TCP connections waiting for a hello.
    // Opened 64 at a time: a burst past the listen backlog would wait for SYN retries.
    const silent: Socket[] = [];
    while (silent.length < INBOUND_CONNECTIONS_MAX) {
      const batch = Array.from({ length: 64 }, () => {
        const s = connect({ host: "127.0.0.1", port: b.t.address.port });
        s.on("error", () => {});
        return s;
      });
      await Promise.all(batch.map((s) => new Promise((r) => s.once("connect", r))));
      silent.push(...batch);
    }
    const extra = connect({ host: "127.0.0.1", port: b.t.address.port });
    extra.on("error", () => {});
    await new Promise((r) => extra.once("close", r));
    const full = `${INBOUND_CONNECTIONS_MAX} connections already open`;
    assert.deepEqual(
      b.logs.filter((l) => !/handshake timeout|no hello within/.test(l)).map((l) =>
        l.replace(/:\d+:/, ":PORT:")
      ),
      [`cluster: closed connection from 127.0.0.1:PORT: ${full}`],
      `tls ${tls}`,
    );
    silent.pop()!.destroy();
    await waitFor("a request once one closed", () => a.t.request(b.addr, { t: "pki.ca" }));
    for (const s of silent) s.destroy();
    await closeAll(a, b);
  }
});
