import assert from "node:assert/strict";
import { seededRandom } from "../../raft/sim/prng.ts";
import { decode, query } from "./_testing.ts";
import { encodeReply, writeResponse } from "./reply.ts";
import type { Reply } from "./resolve.ts";
import { parseQuery, type Query, type Rr } from "./wire.ts";
import { WIRE_BYTES_MAX, WIRE_FORMS_MAX, wireBytesHeld, wireResponse } from "./wire_answer.ts";

function a(n: number, start = 0): Rr[] {
  return Array.from({ length: n }, (_, i) => ({
    name: "web.service.berth.",
    type: "A" as const,
    ttl: 5,
    data: `10.0.${(start + i) >> 8}.${(start + i) & 0xff}`,
  }));
}

function reply(answers: Rr[], order: Reply["order"], additionals: Rr[] = []): Reply {
  return { rcode: 0, authoritative: true, answers, authority: [], additionals, order };
}

function q(name: string, opts: Parameters<typeof query>[2] = {}): Query {
  return parseQuery(query(name, "A", opts)) as Query;
}

/** The decoded message with every section's records sorted (order aside, the same bytes). */
function sorted(bytes: Uint8Array) {
  const m = decode(bytes);
  const text = (rrs: unknown[]) => rrs.map((r) => JSON.stringify(r)).sort();
  return { ...m, answers: text(m.answers), additionals: text(m.additionals) };
}

Deno.test("wireResponse() gives writeResponse()'s message apart from answer order, for every form", () => {
  const random = seededRandom(3);
  const replies = [
    reply(a(1), "shuffle"),
    reply(a(2), "shuffle"),
    reply(a(40), "shuffle"),
    reply(a(40), "rotate"),
    reply(a(3), "fixed"),
    reply(a(5), "shuffle", [{ name: "x.addr.berth.", type: "A", ttl: 5, data: "10.9.9.9" }]),
    // Answers of different lengths: laid out per query.
    reply(
      [...a(2), { name: "web.service.berth.", type: "AAAA", ttl: 5, data: "fd00::1" }],
      "shuffle",
    ),
  ];
  const forms = [
    { limit: 512, query: q("web.service.berth", { id: 1 }) },
    { limit: 512, query: q("WEB.Service.berth", { id: 2, rd: false }) },
    { limit: 1232, query: q("web.service.berth", { id: 3, udpPayloadSize: 1232 }) },
    { limit: 65_535, query: q("web.service.berth", { id: 4 }) },
    { limit: 100, query: q("web.service.berth", { id: 5 }) }, // truncated: TC
  ];
  for (const r of replies) {
    const e = encodeReply(r);
    for (let round = 0; round < 3; round++) {
      for (const { limit, query } of forms) {
        const opts = { limitBytes: limit, recursion: round === 1, random };
        const got = wireResponse(query, e, opts);
        const want = writeResponse(query, e, { ...opts, random: () => 0 });
        assert.equal(got.length, want.length);
        assert.deepEqual(got.subarray(0, 12), want.subarray(0, 12), "header");
        const g = sorted(got);
        const w = sorted(want);
        if (g.flag_tc) {
          // A truncated answer carries as many answers, drawn from the reply's.
          assert.equal(g.answers.length, w.answers.length);
          const all = sorted(writeResponse(query, e, { ...opts, limitBytes: 65_535 })).answers;
          for (const x of g.answers) assert.ok(all.includes(x), x);
        } else assert.deepEqual(g, w);
      }
    }
  }
});

Deno.test("wireResponse() shuffles and rotates answers per query on the wire", () => {
  const random = seededRandom(9);
  const shuffled = encodeReply(reply(a(4), "shuffle"));
  const firsts = new Set<string>();
  const query = q("web.service.berth");
  for (let i = 0; i < 60; i++) {
    const m = decode(wireResponse(query, shuffled, { limitBytes: 512, recursion: false, random }));
    firsts.add(String(m.answers[0]!.data));
    assert.deepEqual(m.answers.map((x) => x.data).sort(), a(4).map((x) => x.data).sort());
  }
  assert.equal(firsts.size, 4, "every address comes first sometimes");
  const rotated = encodeReply(reply(a(3), "rotate"));
  const order = (i: number) =>
    decode(wireResponse(q("web.service.berth", { id: i }), rotated, {
      limitBytes: 512,
      recursion: false,
      random,
    })).answers.map((x) => x.data);
  assert.deepEqual(
    [order(1), order(2), order(3), order(4)],
    [
      ["10.0.0.0", "10.0.0.1", "10.0.0.2"],
      ["10.0.0.1", "10.0.0.2", "10.0.0.0"],
      ["10.0.0.2", "10.0.0.0", "10.0.0.1"],
      ["10.0.0.0", "10.0.0.1", "10.0.0.2"],
    ],
  );
});

Deno.test("wireResponse() echoes each query's id and spelling, past WIRE_FORMS_MAX forms", () => {
  const e = encodeReply(reply(a(2), "shuffle"));
  const spellings = Array.from(
    { length: WIRE_FORMS_MAX * 2 },
    (_, i) =>
      [..."web.service.berth"].map((c, k) => (i >> (k % 4)) & 1 ? c.toUpperCase() : c).join(""),
  );
  for (let round = 0; round < 2; round++) {
    spellings.forEach((name, i) => {
      for (const limit of [512, 1232, 4096]) {
        const m = decode(wireResponse(q(name, { id: 100 + i }), e, {
          limitBytes: limit,
          recursion: false,
          random: Math.random,
        }));
        assert.equal(m.id, 100 + i);
        assert.equal(m.questions[0]!.name, name);
        assert.equal(m.answers.length, 2);
      }
    });
  }
});

Deno.test("wireResponse() holds at most WIRE_BYTES_MAX of forms, then lays out per query", () => {
  const query = q("web.service.berth");
  const opts = { limitBytes: 65_535, recursion: false, random: Math.random };
  // 200 replies of 48 KB each: past the bound.
  const replies = Array.from({ length: 200 }, (_, i) => encodeReply(reply(a(3000, i), "shuffle")));
  for (const e of replies) {
    const m = decode(wireResponse(query, e, opts));
    assert.equal(m.answers.length, 3000);
    assert.ok(wireBytesHeld() <= WIRE_BYTES_MAX, `${wireBytesHeld()} bytes held`);
  }
  // Every reply answered again (forms for some, per-query layout for the rest): still whole.
  for (const e of replies) assert.equal(decode(wireResponse(query, e, opts)).answers.length, 3000);
});
