/**
 * End to end, real processes: what a member's cluster port shows on the wire. A plain TCP client
 * speaking the frame format members spoke before mutual TLS is closed before any state is sent;
 * traffic captured on loopback (tcpdump) during a KV write holds neither the key nor the value
 * in clear, while the same capture of a `--dev --tls off` cluster holds both (the control that
 * proves the capture sees the members' traffic).
 *
 * Needs tcpdump (.ci/run installs it) and the right to capture on `lo`.
 * Run under the e2e lock: `flock /tmp/berth-e2e.lock deno test -A test/e2e_wire_test.ts`.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import {
  type AgentProc,
  apiJson,
  kvGet,
  kvPut,
  leaderOf,
  memberTls,
  startAgent,
  startCluster,
  stopAll,
} from "./harness.ts";
import { waitFor } from "./wait.ts";
import { encodeBody, FrameReader, joinFrames } from "../src/cluster/_frame.ts";
import { PROTOCOL_VERSION } from "../src/cluster/_transport_shared.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** A random string of `n` lower-case letters and digits (nothing that could occur by chance). */
function randomText(n: number): string {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => abc[b % abc.length]).join(
    "",
  );
}

/** Whether `needle` occurs in `hay` as bytes. */
function containsBytes(hay: Uint8Array, needle: string): boolean {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).includes(needle);
}

/** The cluster id in a member's certificate (its URI name berth://<clusterId>/node/<node>). */
function clusterIdOf(a: AgentProc): string {
  const cert = new X509Certificate(Deno.readTextFileSync(`${a.dataDir}/node.crt`));
  const m = /URI:berth:\/\/([^/]+)\/node\//.exec(cert.subjectAltName ?? "");
  assert.ok(m, `no member URI in ${a.node}'s certificate: ${cert.subjectAltName}`);
  return m[1]!;
}

/** Stops the agents and removes their data directories (the harness leaves them). */
async function stopAndRemove(agents: AgentProc[]): Promise<void> {
  await stopAll(agents);
  for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
}

Deno.test(
  "member with TLS closes a plain TCP client speaking the old frame format before sending any state",
  e2e,
  async () => {
    const a = await startAgent({ docker: false });
    try {
      const clusterId = clusterIdOf(a);
      const conn = await Deno.connect({ hostname: a.host, port: a.bindPort });
      const local = (conn.localAddr as Deno.NetAddr).port;
      // What a member without TLS sent: its hello, then a request for the member list.
      const hello = {
        k: "hello",
        v: PROTOCOL_VERSION,
        clusterId: "",
        nodeId: 0,
        address: "127.0.0.9:1",
      };
      await conn.write(joinFrames([
        encodeBody(hello),
        encodeBody({ k: "req", id: 1, b: { t: "members" } }),
      ]));
      // Read until the member closes (EOF or reset); bounded: a connection left open fails.
      const chunks: Uint8Array[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        conn.close();
      }, 20_000);
      try {
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          chunks.push(buf.slice(0, n));
        }
      } catch (e) {
        if (timedOut) throw new Error("the member kept the plain connection open");
        assert.ok(e instanceof Deno.errors.ConnectionReset, `reading: ${e}`);
      } finally {
        clearTimeout(timer);
      }
      conn.close();
      const got = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0));
      chunks.reduce((at, c) => (got.set(c, at), at + c.byteLength), 0);
      // At most a TLS alert record (content type 21), which is no frame and holds no state.
      if (got.byteLength > 0) {
        assert.equal(got[0], 21, `not a TLS alert: ${Array.from(got.slice(0, 16))}`);
        assert.ok(got.byteLength <= 7, `${got.byteLength} bytes answered`);
      }
      const frames: unknown[] = [];
      new FrameReader(1 << 20).push(got, (body) => (frames.push(body), true));
      assert.deepEqual(frames, []);
      for (const secret of [a.node, clusterId]) assert.ok(!containsBytes(got, secret), secret);
      // One refusal line naming this connection.
      const mine = new RegExp(`cluster: refused 127\\.0\\.0\\.1:${local}: TLS handshake failed: `);
      await waitFor("the refusal log line", () => a.log().split("\n").some((l) => mine.test(l)));
      assert.equal(a.log().split("\n").filter((l) => mine.test(l)).length, 1, a.log());
      assert.equal(a.log().split("\n").filter((l) => l.includes(`:${local}`)).length, 1, a.log());
      // The member is unharmed and still alone.
      const members = await apiJson(a, "/v1/berth/members?stale") as { name: string }[];
      assert.deepEqual(members.map((m) => m.name), [a.node]);
    } finally {
      await stopAndRemove([a]);
    }
  },
);

/** A tcpdump capture on `lo` of the TCP traffic to and from `ports`, into a temp file. */
async function capture(ports: number[]) {
  const dir = Deno.makeTempDirSync({ prefix: "berth-e2e-pcap-" });
  const file = `${dir}/lo.pcap`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("tcpdump", {
      // --immediate-mode and -U: each packet handed over and written at once (else packets still
      // in the kernel's buffer when tcpdump stops are lost); -Z root: keep the right to write
      // into our temp dir.
      args: [
        "-i",
        "lo",
        "--immediate-mode",
        "-U",
        "-Z",
        "root",
        "-w",
        file,
        ports.map((p) => `tcp port ${p}`).join(" or "),
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    Deno.removeSync(dir, { recursive: true });
    throw new Error(`this test needs tcpdump (.ci/run installs it): ${e}`);
  }
  let err = "";
  const reading = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) err += c;
  })();
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  try {
    await waitFor("tcpdump to listen", () => {
      if (exited) throw new Error(`tcpdump exited: ${err}`);
      return err.includes("listening on lo");
    }, { timeoutMs: 10_000 });
  } catch (e) {
    if (!exited) child.kill("SIGKILL");
    await status;
    Deno.removeSync(dir, { recursive: true });
    throw new Error(`tcpdump cannot capture on lo: ${e}`);
  }
  return {
    /** Stops the capture; the bytes captured (the temp files are removed). */
    async stop(): Promise<Uint8Array> {
      if (!exited) child.kill("SIGINT");
      await status;
      await reading;
      try {
        return Deno.readFileSync(file);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  };
}

/** Writes a fresh key and value through a follower of a 3-member cluster; the capture of it. */
async function captureKvWrite(args: string[]) {
  const agents = await startCluster(3, { args });
  try {
    const key = `wire/${randomText(24)}`;
    const value = randomText(24);
    const pcap = await capture(agents.map((a) => a.bindPort));
    let bytes: Uint8Array;
    try {
      const leader = await leaderOf(agents[0]!);
      const follower = agents.find((a) => a.node !== leader)!;
      assert.equal(await kvPut(follower, key, value), true);
      for (const a of agents) {
        await waitFor(
          `${a.node} to have the key`,
          async () => (await kvGet(a, key, { mode: "stale" }))?.value === value,
        );
      }
    } finally {
      bytes = await pcap.stop();
    }
    return { bytes, key, value, tls: agents.map(memberTls) };
  } finally {
    await stopAndRemove(agents);
  }
}

Deno.test(
  "members with TLS: loopback traffic captured during a KV write holds neither the key nor the value in clear (plain members: both)",
  e2e,
  async () => {
    const tls = await captureKvWrite([]);
    const plain = await captureKvWrite(["--dev", "--tls", "off"]);
    assert.deepEqual([tls.tls, plain.tls], [[true, true, true], [false, false, false]]);
    // The control: the same capture of plain members shows both, so the capture saw the writes.
    assert.ok(plain.bytes.byteLength > 24 * 10, `plain capture: ${plain.bytes.byteLength} bytes`);
    assert.ok(containsBytes(plain.bytes, plain.key), "the key in the plain members' traffic");
    assert.ok(containsBytes(plain.bytes, plain.value), "the value in the plain members' traffic");
    assert.ok(tls.bytes.byteLength > 24 * 10, `TLS capture: ${tls.bytes.byteLength} bytes`);
    assert.equal(containsBytes(tls.bytes, tls.key), false, "the key in clear in TLS traffic");
    assert.equal(containsBytes(tls.bytes, tls.value), false, "the value in clear in TLS traffic");
  },
);
