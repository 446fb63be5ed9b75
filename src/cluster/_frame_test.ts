import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeBody, encodeBody, FrameReader, joinFrames } from "./_frame.ts";

Deno.test("FrameReader.push() yields the same bodies however the stream is split", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
      (bodies, cuts) => {
        const stream = joinFrames(bodies);
        const reader = new FrameReader(300);
        const got: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < stream.byteLength; i++) {
          const n = cuts[i % cuts.length]!;
          const err = reader.push(stream.subarray(at, at + n), (b) => {
            got.push(b.slice());
            return true;
          });
          assert.equal(err, null);
          at += n;
        }
        assert.deepEqual(got, bodies);
        assert.deepEqual(reader.partial(), { have: 0, want: 0 });
      },
    ),
  );
});

Deno.test("FrameReader.push() rejects empty and oversized frames and stops on request", () => {
  assert.equal(new FrameReader(10).push(new Uint8Array([0, 0, 0, 0]), () => true), "empty frame");
  assert.equal(
    new FrameReader(10).push(new Uint8Array([0, 0, 0, 11]), () => true),
    "frame of 11 bytes exceeds the limit of 10 bytes",
  );
  const split = new FrameReader(10);
  assert.equal(split.push(new Uint8Array([0, 0]), () => true), null);
  assert.match(split.push(new Uint8Array([1, 0]), () => true)!, /256 bytes exceeds/);
  let seen = 0;
  const stop = new FrameReader(10);
  stop.push(joinFrames([new Uint8Array([1]), new Uint8Array([2])]), () => {
    seen++;
    return false;
  });
  assert.equal(seen, 1);
});

Deno.test("FrameReader.limit applies from the next frame header on, refused before buffering", () => {
  const reader = new FrameReader(16);
  const bodies: number[] = [];
  const big = joinFrames([new Uint8Array(100)]);
  // Raised by the first frame's handler (as the hello does): the second frame, in the same
  // chunk, is read with the new limit.
  const first = joinFrames([new Uint8Array([7])]);
  assert.equal(
    reader.push(new Uint8Array([...first, ...big]), (b) => {
      bodies.push(b.byteLength);
      reader.limit = 1000;
      return true;
    }),
    null,
  );
  assert.deepEqual(bodies, [1, 100]);
  reader.limit = 16;
  assert.equal(reader.limit, 16);
  // A bare header over the limit is refused at once: nothing waits for its body.
  const again = new FrameReader(16);
  assert.equal(
    again.push(big.subarray(0, 4), () => true),
    "frame of 100 bytes exceeds the limit of 16 bytes",
  );
  assert.deepEqual(again.partial(), { have: 0, want: 0 });
});

Deno.test("decodeBody() returns plain Uint8Arrays that do not alias the frame", () => {
  const frame = joinFrames([encodeBody({ k: "msg", b: new Uint8Array([1, 2, 3]) })]);
  const got = decodeBody(frame.subarray(4)) as { b: Uint8Array };
  assert.equal(Object.getPrototypeOf(got.b), Uint8Array.prototype);
  assert.deepEqual(got.b, new Uint8Array([1, 2, 3]));
  frame.fill(0);
  assert.deepEqual(got.b, new Uint8Array([1, 2, 3]));
  assert.throws(() => decodeBody(new Uint8Array([1, 2])), /end of buffer/);
});

Deno.test("encodeBody() of a small message after a large one does not share the large buffer", () => {
  encodeBody({ big: new Uint8Array(3 * 1024 * 1024) });
  const small = encodeBody({ t: "raft", m: { type: "MsgHeartbeat", to: 2 } });
  // A queued heartbeat must not keep megabytes alive.
  assert.ok(small.buffer.byteLength < 64 * 1024, `${small.buffer.byteLength} bytes kept`);
  assert.deepEqual(decodeBody(small), { t: "raft", m: { type: "MsgHeartbeat", to: 2 } });
});
