import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  RESPONSE_HEAD_BYTES_MAX,
  type ResponseHead,
  ResponseParseError,
  ResponseParser,
} from "./response_parser.ts";

interface Outcome {
  head: ResponseHead | null;
  body: string;
  /** null: not ended. */
  reusable: boolean | null;
  error: string | null;
}

/** Feeds `wire` in pieces of `step` bytes (0: at once), then `close()` if asked. */
function parse(wire: string, opts: { step?: number; noBody?: boolean; close?: boolean } = {}) {
  const out: Outcome = { head: null, body: "", reusable: null, error: null };
  const p = new ResponseParser({
    onHead: (h) => out.head = h,
    onBody: (c) => out.body += c.toString("latin1"),
    onEnd: (r) => {
      assert.equal(out.reusable, null, "onEnd once");
      out.reusable = r;
    },
  });
  p.reset(opts.noBody ?? false);
  const bytes = Buffer.from(wire, "latin1");
  const step = opts.step || bytes.length || 1;
  try {
    for (let i = 0; i < bytes.length; i += step) p.feed(bytes.subarray(i, i + step));
    if (opts.close) p.close();
  } catch (e) {
    if (!(e instanceof ResponseParseError)) throw e;
    out.error = e.message;
  }
  return out;
}

const CASES: {
  name: string;
  wire: string;
  noBody?: boolean;
  close?: boolean;
  status?: number;
  body?: string;
  reusable?: boolean | null;
  error?: RegExp;
  laterError?: RegExp;
}[] = [
  {
    name: "content-length",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
    status: 200,
    body: "hello",
    reusable: true,
  },
  {
    name: "chunked with extensions and trailers",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
    status: 200,
    body: "hello world",
    reusable: true,
  },
  {
    name: "chunked without trailers",
    wire: "HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
    status: 201,
    body: "0123456789",
    reusable: true,
  },
  {
    name: "read until close",
    wire: "HTTP/1.1 200 OK\r\n\r\nstreamed",
    close: true,
    body: "streamed",
    reusable: false,
  },
  {
    name: "HEAD answer has no body despite its length",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
    noBody: true,
    body: "",
    reusable: true,
  },
  {
    name: "204 and 304 have no body",
    wire: "HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
    status: 304,
    body: "",
    reusable: true,
  },
  {
    name: "interim 1xx responses are skipped",
    wire: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    status: 200,
    body: "ok",
    reusable: true,
  },
  {
    name: "Connection: close is not reusable",
    wire: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    body: "ok",
    reusable: false,
  },
  {
    name: "HTTP/1.0 without keep-alive is not reusable",
    wire: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    body: "ok",
    reusable: false,
  },
  {
    name: "HTTP/1.0 with keep-alive is reusable",
    wire: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    body: "ok",
    reusable: true,
  },
  {
    name: "transfer-encoding with content-length is refused",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "2\r\nok\r\n0\r\n\r\n",
    error: /both transfer-encoding and content-length/,
  },
  {
    name: "a transfer coding other than chunked is refused",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    error: /unsupported transfer-encoding/,
  },
  {
    name: "bytes after the response make the connection unusable",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
    body: "ok",
    reusable: false,
    // Fed in pieces, the extra bytes come in a later feed(), which throws.
    laterError: /data after the end/,
  },
  {
    name: "a response cut short is an error",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    close: true,
    error: /cut short/,
  },
  {
    name: "a connection closed before any response is an error",
    wire: "",
    close: true,
    error: /closed before a response/,
  },
  {
    name: "bare LF line ends are accepted (RFC 9112 §2.2), read until close",
    wire: "HTTP/1.1 200 OK\nContent-Type: text/plain\n\nhello\n",
    close: true,
    status: 200,
    body: "hello\n",
    reusable: false,
  },
  {
    name: "bare LF and CRLF mixed in one head, framed by content-length",
    wire: "HTTP/1.1 200 OK\r\nA: b\nContent-Length: 2\n\r\nok",
    status: 200,
    body: "ok",
    reusable: true,
  },
  {
    name: "bare LF chunk lines and trailers",
    wire: "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n1;x=y\n!\n0\nT: 1\n\n",
    status: 200,
    body: "ok!",
    reusable: true,
  },
  {
    name: "a bare CR inside a header line is refused",
    wire: "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
    error: /invalid header/,
  },
  {
    name: "a connection closed inside the head names it",
    wire: "HTTP/1.1 200 OK\r\nA: b",
    close: true,
    error: /closed inside the response head/,
  },
  { name: "invalid status line", wire: "HTTX/1.1 200 OK\r\n\r\n", error: /invalid status line/ },
  { name: "folded header line", wire: "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", error: /invalid/ },
  {
    name: "conflicting content-length",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
    error: /conflicting/,
  },
  {
    name: "malformed content-length",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    error: /invalid content-length/,
  },
  {
    name: "malformed chunk size",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    error: /invalid chunk size/,
  },
  {
    name: "chunk data without its CRLF",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX",
    error: /not followed by CRLF/,
  },
  {
    name: "an unexpected 101",
    wire: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    error: /101/,
  },
];

for (const c of CASES) {
  for (const step of [0, 1, 3]) {
    Deno.test(`ResponseParser.feed() ${c.name} (pieces of ${step || "all"})`, () => {
      const out = parse(c.wire, { step, noBody: c.noBody, close: c.close });
      if (c.error) {
        assert.match(out.error ?? "(no error)", c.error);
        return;
      }
      if (step !== 0 && c.laterError) {
        assert.match(out.error ?? "(no error)", c.laterError);
        return;
      }
      assert.equal(out.error, null);
      if (c.status !== undefined) assert.equal(out.head?.status, c.status);
      assert.equal(out.body, c.body);
      assert.equal(out.reusable, c.reusable);
    });
  }
}

Deno.test("ResponseParser.feed() keeps raw header names, values trimmed, repeats kept", () => {
  const out = parse("HTTP/1.1 200 Fine\r\nSet-Cookie: a=1\r\nSet-Cookie:  b=2 \r\n\r\n", {
    noBody: true,
  });
  assert.deepEqual(out.head, {
    status: 200,
    reason: "Fine",
    headers: ["Set-Cookie", "a=1", "Set-Cookie", "b=2"],
  });
});

Deno.test("ResponseParser.feed() refuses a head over RESPONSE_HEAD_BYTES_MAX", () => {
  const big = `HTTP/1.1 200 OK\r\nX: ${"a".repeat(RESPONSE_HEAD_BYTES_MAX)}`;
  assert.match(parse(big, { step: 4096 }).error ?? "", /response head over/);
});

Deno.test("ResponseParser.reset() readies the parser for the next response", () => {
  let ends = 0;
  const p = new ResponseParser({ onHead: () => {}, onBody: () => {}, onEnd: () => ends++ });
  for (let i = 0; i < 3; i++) {
    p.reset(false);
    assert.equal(p.started, false);
    p.feed(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"));
    assert.equal(p.done, true);
  }
  assert.equal(ends, 3);
  assert.throws(() => p.feed(Buffer.from("x")), ResponseParseError);
});

Deno.test("ResponseParser.feed() refuses header names with whitespace or NUL, values with NUL", () => {
  for (const bad of ["A b: 1", "A\tb: 1", "A\u00a0b: 1", "A\0: 1", "A: b\0c"]) {
    const out = parse(`HTTP/1.1 200 OK\r\n${bad}\r\nContent-Length: 0\r\n\r\n`, {});
    assert.match(out.error ?? "(no error)", /invalid header "A/, JSON.stringify(bad));
  }
  // Latin1 beyond ASCII is not whitespace except NBSP: such a name passes, as does a CR that
  // only ends a line and a value's inner spaces and tabs.
  const ok = parse("HTTP/1.1 200 OK\r\nX-\u00e9\u0085: a \t b\r\nContent-Length: 0\r\n\r\n", {});
  assert.equal(ok.error, null);
  assert.deepEqual(ok.head?.headers, ["X-\u00e9\u0085", "a \t b", "Content-Length", "0"]);
});

Deno.test("ResponseParser.feed() reads a head whose last line ends in a bare CR as before", () => {
  // The CR before the final CRLF is trimmed from the value (a bare CR elsewhere is refused).
  const out = parse("HTTP/1.1 200 OK\r\nA: b\r\r\nContent-Length: 0\r\r\n\r\n", {});
  assert.equal(out.error, null);
  assert.deepEqual(out.head?.headers, ["A", "b", "Content-Length", "0"]);
});
