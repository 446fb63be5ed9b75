/**
 * Throughput of committed proposals in a 3-node in-process cluster: in-memory storage, no
 * network delay, every ready handled per the contract (persist → send → apply → advance).
 * A client keeps 1, 16 or 256 proposals of 256 bytes in flight at the leader; a proposal
 * counts once the leader applied it.
 *
 *     deno task bench:raft [--seconds 2]
 *
 * @module
 */
import { MemoryStorage, type Message, RawNode } from "../raft/mod.ts";
import { Rng } from "../raft/sim/prng.ts";
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags, parseIntIn } from "../src/lib/flags.ts";

const PAYLOAD_BYTES = 256;
const COMPACT_EVERY = 10_000;

interface BenchNode {
  raw: RawNode;
  storage: MemoryStorage;
  applied: number;
}

function makeCluster(): BenchNode[] {
  const rng = new Rng(1);
  const ids = [1, 2, 3];
  return ids.map((id) => {
    const storage = new MemoryStorage({ confState: { voters: ids, learners: [] } });
    const raw = new RawNode({
      id,
      storage,
      random: (n) => rng.int(n),
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
    });
    return { raw, storage, applied: 0 };
  });
}

/** Handles one ready per node and delivers all messages. Returns leader-applied proposals. */
function pump(nodes: BenchNode[], queue: Message[]): number {
  let appliedProposals = 0;
  for (const n of nodes) {
    if (!n.raw.hasReady()) continue;
    const rd = n.raw.ready();
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    for (const m of rd.messages) queue.push(m);
    for (const e of rd.committedEntries) {
      n.applied = e.index;
      if (n.raw.raft.state === "leader" && e.data.byteLength > 0) appliedProposals++;
    }
    n.raw.advance();
    const first = n.storage.firstIndex();
    if (n.applied - first > COMPACT_EVERY) {
      n.storage.createSnapshot(n.applied, n.raw.status().config, new Uint8Array(0));
      n.storage.compact(n.applied);
    }
  }
  const msgs = queue.splice(0, queue.length);
  for (const m of msgs) {
    const to = nodes[m.to - 1];
    if (to !== undefined) to.raw.step(m);
  }
  return appliedProposals;
}

function run(inflight: number, seconds: number): { committed: number; secs: number } {
  const nodes = makeCluster();
  const queue: Message[] = [];
  const leader = nodes[0] as BenchNode;
  leader.raw.campaign();
  for (let i = 0; i < 20; i++) pump(nodes, queue);
  if (leader.raw.raft.state !== "leader") throw new Error("bench: no leader");
  const payload = new Uint8Array(PAYLOAD_BYTES);
  let outstanding = 0, committed = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let now = t0;
  let rounds = 0;
  while (now < deadline) {
    while (outstanding < inflight) {
      leader.raw.propose(payload);
      outstanding++;
    }
    const done = pump(nodes, queue);
    outstanding -= done;
    committed += done;
    if ((++rounds & 63) === 0) now = performance.now();
  }
  return { committed, secs: (performance.now() - t0) / 1000 };
}

function main(args: string[]): number {
  let seconds: number;
  try {
    const raw = parseFlags(args, [{ name: "seconds", kind: "string" }], { positionals: false })
      .values.get("seconds");
    try {
      seconds = raw === undefined ? 2 : parseIntIn(raw, [1, 3600]);
    } catch (e) {
      throw new Error(`--seconds ${raw}: ${errorText(e)}; expected an integer in 1..3600`);
    }
  } catch (e) {
    console.error(`bench:raft: ${errorText(e)}`);
    return 2;
  }
  run(16, 0.3); // Warm up the JIT.
  console.log("raft bench: 3 nodes in one process, in-memory storage, 256-byte proposals");
  console.log("in flight | committed | seconds | proposals/s");
  console.log("--------- | --------- | ------- | -----------");
  for (const inflight of [1, 16, 256]) {
    const r = run(inflight, seconds);
    console.log(
      `${String(inflight).padStart(9)} | ${String(r.committed).padStart(9)} | ` +
        `${r.secs.toFixed(2).padStart(7)} | ${
          Math.round(r.committed / r.secs).toString().padStart(11)
        }`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
