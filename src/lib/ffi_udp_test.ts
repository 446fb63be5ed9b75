import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import {
  adoptUdpBatchSocket,
  closeUdpFd,
  type Datagram,
  ErrnoError,
  openUdpBatchSocket,
  type UdpBatchOptions,
  type UdpBatchSocket,
  UdpSendError,
} from "./ffi_udp.ts";

const text = new TextEncoder();
const untext = new TextDecoder();

function open(host = "127.0.0.1", port = 0, opts: UdpBatchOptions = {}): UdpBatchSocket {
  const r = openUdpBatchSocket(host, port, opts);
  assert.ok(r.socket, `FFI socket unavailable: ${"why" in r ? r.why : ""}`);
  return r.socket;
}

/** Receives until `n` datagrams arrived (fails after 5 s); returns them and the batch sizes. */
async function receiveN(s: UdpBatchSocket, n: number): Promise<[Datagram[], number[]]> {
  const got: Datagram[] = [];
  const batches: number[] = [];
  const deadline = Date.now() + 5000;
  while (got.length < n) {
    assert.ok(Date.now() < deadline, `received ${got.length} of ${n}`);
    const batch = s.receive();
    if (batch.length === 0) await s.readable(100);
    else (got.push(...batch), batches.push(batch.length));
  }
  return [got, batches];
}

/** A node:dgram client bound on loopback; collects what it receives. */
async function client(type: "udp4" | "udp6" = "udp4") {
  const sock: Socket = createSocket(type);
  const got: { data: string; port: number; address: string }[] = [];
  sock.on("message", (m, r) => got.push({ data: m.toString(), port: r.port, address: r.address }));
  await new Promise<void>((ok) => sock.bind(0, type === "udp4" ? "127.0.0.1" : "::1", ok));
  const waitFor = async (n: number) => {
    const deadline = Date.now() + 5000;
    while (got.length < n) {
      assert.ok(Date.now() < deadline, `client received ${got.length} of ${n}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return got;
  };
  const send = (data: string | Uint8Array, port: number, host: string) =>
    new Promise<void>((ok, fail) => sock.send(data, port, host, (e) => e ? fail(e) : ok()));
  const close = () => new Promise<void>((ok) => sock.close(ok));
  return { sock, got, waitFor, send, close, port: () => sock.address().port };
}

Deno.test("openUdpBatchSocket() binds port 0 to a free port and round-trips with node:dgram", async () => {
  const s = open();
  const c = await client();
  try {
    assert.equal(s.address.host, "127.0.0.1");
    assert.ok(s.address.port > 0);
    await c.send("ping", s.address.port, "127.0.0.1");
    const [[d]] = await receiveN(s, 1);
    assert.equal(untext.decode(d!.data), "ping");
    assert.deepEqual([d!.address, d!.port, d!.truncated], ["127.0.0.1", c.port(), undefined]);
    assert.equal(s.send([{ ...d!, data: text.encode("pong") }]), 1);
    const [r] = await c.waitFor(1);
    assert.deepEqual(r, { data: "pong", port: s.address.port, address: "127.0.0.1" });
  } finally {
    s.close();
    await c.close();
  }
});

Deno.test("UdpBatchSocket.receive() takes many datagrams per call and send() returns them all", async () => {
  const s = open("127.0.0.1", 0, { batch: 16 });
  const c = await client();
  try {
    const n = 200;
    for (let i = 0; i < n; i++) await c.send(`m${i}`, s.address.port, "127.0.0.1");
    const [got, batches] = await receiveN(s, n);
    assert.deepEqual(
      got.map((d) => untext.decode(d.data)),
      [...Array(n).keys()].map((i) => `m${i}`),
    );
    assert.ok(batches.every((b) => b <= 16), `batches ${batches}`);
    assert.ok(batches.some((b) => b > 1), `one datagram per call: ${batches}`);
    assert.equal(s.receive(5).length, 0);
    // 200 replies: 13 sendmmsg calls of at most 16.
    const replies = got.map((d) => ({ ...d, data: text.encode(`r${untext.decode(d.data)}`) }));
    assert.equal(s.send(replies), n);
    const back = await c.waitFor(n);
    assert.deepEqual(back.map((r) => r.data), replies.map((r) => untext.decode(r.data)));
  } finally {
    s.close();
    await c.close();
  }
});

Deno.test("UdpBatchSocket.receive(max) takes at most max", async () => {
  const s = open();
  const c = await client();
  try {
    for (let i = 0; i < 5; i++) await c.send(`m${i}`, s.address.port, "127.0.0.1");
    await receiveN(s, 0);
    assert.equal(await s.readable(5000), true);
    const first = s.receive(2);
    assert.ok(first.length <= 2 && first.length >= 1);
    assert.equal(s.receive(0).length, 0);
    const [rest] = await receiveN(s, 5 - first.length);
    assert.deepEqual([...first, ...rest].map((d) => untext.decode(d.data)), [
      "m0",
      "m1",
      "m2",
      "m3",
      "m4",
    ]);
  } finally {
    s.close();
    await c.close();
  }
});

Deno.test("openUdpBatchSocket() with reusePort: two sockets on one port both get traffic", async () => {
  const a = open("127.0.0.1", 0, { reusePort: true });
  const b = open("127.0.0.1", a.address.port, { reusePort: true });
  const clients = await Promise.all([...Array(64)].map(() => client()));
  try {
    assert.equal(b.address.port, a.address.port);
    for (const [i, c] of clients.entries()) await c.send(`q${i}`, a.address.port, "127.0.0.1");
    const got: { a: Datagram[]; b: Datagram[] } = { a: [], b: [] };
    const deadline = Date.now() + 5000;
    while (got.a.length + got.b.length < clients.length) {
      assert.ok(Date.now() < deadline, `received ${got.a.length}+${got.b.length}`);
      got.a.push(...a.receive());
      got.b.push(...b.receive());
      await new Promise((r) => setTimeout(r, 5));
    }
    // The kernel picks the socket by a hash of the sender's address and port: with 64 source
    // ports both sockets get some (all 64 on one side has probability 2^-63).
    assert.ok(got.a.length > 0 && got.b.length > 0, `${got.a.length}/${got.b.length}`);
    const all = [...got.a, ...got.b].map((d) => untext.decode(d.data)).sort();
    assert.deepEqual(all, clients.map((_, i) => `q${i}`).sort());
  } finally {
    a.close();
    b.close();
    await Promise.all(clients.map((c) => c.close()));
  }
});

Deno.test("openUdpBatchSocket() with reusePort leaves no way in for an SO_REUSEADDR socket (it would take the port's queries)", async () => {
  const a = open("127.0.0.1", 0, { reusePort: true });
  // On UDP, SO_REUSEADDR on both sockets lets a socket of any user bind the port, and the last
  // one bound receives its datagrams; SO_REUSEPORT alone admits only the same user's sockets
  // that set it too.
  const other = createSocket({ type: "udp4", reuseAddr: true });
  try {
    const bound = await new Promise<string>((resolve) => {
      other.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
      other.bind(a.address.port, "127.0.0.1", () => resolve("bound"));
    });
    assert.equal(bound, "EADDRINUSE");
  } finally {
    a.close();
    await new Promise<void>((r) => {
      try {
        other.close(() => r());
      } catch {
        r(); // never bound
      }
    });
  }
});

Deno.test("openUdpBatchSocket() without reusePort on a taken port throws EADDRINUSE", () => {
  const a = open();
  try {
    assert.throws(
      () => openUdpBatchSocket("127.0.0.1", a.address.port),
      (e) =>
        e instanceof ErrnoError && e.code === "EADDRINUSE" &&
        /^bind 127\.0\.0\.1:\d+: EADDRINUSE/.test(e.message),
    );
  } finally {
    a.close();
  }
});

Deno.test("openUdpBatchSocket() serves IPv6 loopback", async () => {
  const s = open("::1");
  const c = await client("udp6");
  try {
    assert.equal(s.address.host, "::1");
    await c.send("six", s.address.port, "::1");
    const [[d]] = await receiveN(s, 1);
    assert.deepEqual([untext.decode(d!.data), d!.address, d!.port], ["six", "::1", c.port()]);
    assert.equal(s.send([{ ...d!, data: text.encode("xis") }]), 1);
    assert.deepEqual((await c.waitFor(1))[0], {
      data: "xis",
      port: s.address.port,
      address: "::1",
    });
  } finally {
    s.close();
    await c.close();
  }
});

Deno.test("openUdpBatchSocket() on :: gives IPv4 senders as IPv4 and answers them", async () => {
  const s = open("::");
  const c = await client("udp4");
  try {
    assert.equal(s.address.host, "::");
    await c.send("four", s.address.port, "127.0.0.1");
    const [[d]] = await receiveN(s, 1);
    assert.deepEqual([d!.address, d!.port], ["127.0.0.1", c.port()]);
    // Either spelling of the sender reaches it (written as ::ffff:127.0.0.1 on this socket).
    s.send([{ ...d!, data: text.encode("a") }, {
      ...d!,
      address: "::ffff:127.0.0.1",
      data: text.encode("b"),
    }]);
    assert.deepEqual((await c.waitFor(2)).map((r) => r.data), ["a", "b"]);
  } finally {
    s.close();
    await c.close();
  }
});

Deno.test("UdpBatchSocket.close() twice is safe; afterwards nothing is received, sent or awaited", async () => {
  const s = open();
  s.close();
  s.close();
  assert.equal(s.closed, true);
  assert.deepEqual(s.receive(), []);
  assert.equal(s.send([{ data: text.encode("x"), address: "127.0.0.1", port: 9 }]), 0);
  assert.equal(await s.readable(10_000), false);
  // The port is free again.
  open("127.0.0.1", s.address.port).close();
});

Deno.test("UdpBatchSocket.send() skips refused datagrams, sends the rest, then throws UdpSendError", async () => {
  const s = open();
  const c = await client();
  const to = (address: string, data: string, port = c.port()) => ({
    data: text.encode(data),
    address,
    port,
  });
  try {
    const batch = [
      to("not-an-ip", "x"),
      to("127.0.0.1", "one"),
      to("255.255.255.255", "bcast"), // the kernel refuses: no SO_BROADCAST (EACCES)
      to("::1", "v6"), // an IPv6 address on an IPv4 socket
      to("127.0.0.1", "x", 0),
      to("127.0.0.1", "two"),
    ];
    assert.throws(() => s.send(batch), (e) => {
      assert.ok(e instanceof UdpSendError);
      assert.equal(e.sent, 2);
      assert.deepEqual(e.failed.map((f) => [f.address, f.code]), [
        ["not-an-ip", "EINVAL"],
        ["::1", "EINVAL"],
        ["127.0.0.1", "EINVAL"],
        ["255.255.255.255", "EACCES"],
      ]);
      assert.match(
        e.message,
        /^sendmmsg to not-an-ip:\d+: bad address "not-an-ip" \(and 3 more\)$/,
      );
      assert.match(e.failed[3]!.message, /^sendmmsg: EACCES \(Permission denied\)$/);
      return true;
    });
    assert.deepEqual((await c.waitFor(2)).map((r) => r.data), ["one", "two"]);
  } finally {
    s.close();
    await c.close();
  }
});

Deno.test("UdpBatchSocket.receive() marks a datagram longer than bufferBytes truncated", async () => {
  const s = open("127.0.0.1", 0, { bufferBytes: 512 });
  const c = await client();
  try {
    await c.send(new Uint8Array(1000).fill(7), s.address.port, "127.0.0.1");
    await c.send("after", s.address.port, "127.0.0.1");
    const [[big, small]] = await receiveN(s, 2);
    assert.equal(big!.truncated, true);
    assert.deepEqual(big!.data, new Uint8Array(512).fill(7));
    assert.deepEqual([untext.decode(small!.data), small!.truncated], ["after", undefined]);
  } finally {
    s.close();
    await c.close();
  }
});

Deno.test("UdpBatchSocket.send() sends a datagram longer than bufferBytes whole", async () => {
  const s = open("127.0.0.1", 0, { bufferBytes: 512, batch: 4 });
  const c = await client();
  try {
    const big = "b".repeat(3000);
    // A view into a larger buffer: only its own bytes go out.
    const view = text.encode(`skip${big}skip`).subarray(4, 3004);
    const batch = [text.encode("s1"), view, text.encode("s2"), view, text.encode("s3")]
      .map((data) => ({ data, address: "127.0.0.1", port: c.port() }));
    assert.equal(s.send(batch), 5);
    assert.deepEqual((await c.waitFor(5)).map((r) => r.data), ["s1", big, "s2", big, "s3"]);
    // The buffers are the socket's own again after the long ones went out.
    assert.equal(s.send([{ data: text.encode("s4"), address: "127.0.0.1", port: c.port() }]), 1);
    assert.equal((await c.waitFor(6))[5]!.data, "s4");
  } finally {
    s.close();
    await c.close();
  }
});

for (const wait of ["poll", "timer"] as const) {
  Deno.test(`UdpBatchSocket.readable() (wait "${wait}") is false on timeout, true when data arrives`, async () => {
    const s = open("127.0.0.1", 0, { wait });
    const c = await client();
    try {
      assert.equal(await s.readable(20), false);
      const pending = s.readable(10_000);
      assert.equal(s.readable(10_000), pending, "a second wait shares the pending one");
      await c.send("wake", s.address.port, "127.0.0.1");
      assert.equal(await pending, true);
      assert.equal(await s.readable(0), true, "still queued");
      assert.equal(s.receive().length, 1);
      assert.equal(await s.readable(0), false);
    } finally {
      s.close();
      await c.close();
    }
  });

  Deno.test(`UdpBatchSocket.close() (wait "${wait}") resolves a pending readable() false`, async () => {
    const s = open("127.0.0.1", 0, { wait });
    const pending = s.readable(60_000);
    s.close();
    assert.equal(await pending, false);
    open("127.0.0.1", s.address.port).close(); // the fd was closed after the wait ended
  });
}

Deno.test("adoptUdpBatchSocket() serves a kept socket, with what queued meanwhile; closeUdpFd() frees it", async () => {
  const kept = open("127.0.0.1", 0, { keepFd: true, reusePort: true });
  const { port } = kept.address;
  const c = await client();
  try {
    kept.close(); // as a worker thread that ends: the socket stays bound and queues
    assert.throws(() => openUdpBatchSocket("127.0.0.1", port), /EADDRINUSE/);
    await c.send("queued", port, "127.0.0.1");
    const adopted = adoptUdpBatchSocket(kept.fd, { batch: 8 });
    assert.ok(adopted.socket);
    const s = adopted.socket;
    assert.deepEqual(s.address, { host: "127.0.0.1", port });
    const [[d]] = await receiveN(s, 1);
    assert.equal(untext.decode(d!.data), "queued");
    assert.equal(s.send([{ ...d!, data: text.encode("late") }]), 1);
    assert.equal((await c.waitFor(1))[0]!.data, "late");
    // close() of an adopted socket only stops using it: a pending wait ends at its timeout.
    const pending = s.readable(50);
    s.close();
    assert.equal(await pending, false);
    assert.throws(() => openUdpBatchSocket("127.0.0.1", port), /EADDRINUSE/);
  } finally {
    closeUdpFd(kept.fd);
    await c.close();
  }
  open("127.0.0.1", port).close();
});

Deno.test("adoptUdpBatchSocket() throws for an fd that is not open or out of range", () => {
  // No process can hold fd 2^31-1 (the kernel's nr_open stays below 2^30).
  assert.throws(
    () => adoptUdpBatchSocket(2 ** 31 - 1),
    (e) => e instanceof ErrnoError && e.code === "EBADF",
  );
  assert.throws(() => adoptUdpBatchSocket(-1), /fd -1 is not an integer/);
});

Deno.test("openUdpBatchSocket() rejects bad arguments and returns null for a host name", () => {
  assert.throws(
    () => openUdpBatchSocket("127.0.0.1", 70000),
    /port 70000 is not an integer 0\.\.65535/,
  );
  assert.throws(() => openUdpBatchSocket("127.0.0.1", 0, { batch: 0 }), /batch 0 is not/);
  assert.throws(() => openUdpBatchSocket("127.0.0.1", 0, { bufferBytes: 1.5 }), /bufferBytes 1\.5/);
  const r = openUdpBatchSocket("localhost", 0);
  assert.equal(r.socket, null);
  assert.match("why" in r ? r.why : "", /"localhost" is not an IP address/);
});

Deno.test("openUdpBatchSocket() returns null with why when FFI is not permitted", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { openUdpBatchSocket } from ${
        JSON.stringify(new URL("./ffi_udp.ts", import.meta.url).href)
      };
       const r = openUdpBatchSocket("127.0.0.1", 0);
       console.log(JSON.stringify({ socket: r.socket, why: "why" in r ? r.why : null }));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--no-prompt", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = untext.decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.deepEqual(JSON.parse(untext.decode(out.stdout)), {
      socket: null,
      why: "FFI is not permitted (run with --allow-ffi)",
    });
  } finally {
    await Deno.remove(script);
  }
});
