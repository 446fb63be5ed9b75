import assert from "node:assert/strict";
import { ApiClient } from "../api/mod.ts";
import {
  acquire,
  type Clock,
  LOCK_DELAY_S,
  LOCK_KILL_GRACE_MS,
  LOCK_SESSION_TTL_S,
} from "./lock.ts";

/** Virtual time: timers run only when the test advances the clock. */
class FakeClock implements Clock {
  t = 0;
  #next = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id: unknown): void {
    this.#timers.delete(id as number);
  }

  /** Runs every timer due up to `until`, in order, letting the promises they start settle. */
  async advance(until: number): Promise<void> {
    for (;;) {
      await settle();
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (first === undefined || e[1].at < first[1].at) first = e;
      if (first === undefined || first[1].at > until) break;
      this.#timers.delete(first[0]);
      this.t = first[1].at;
      first[1].fn();
    }
    this.t = until;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
}

const SESSION = "5e55-10n";

/**
 * An agent that holds the lock for SESSION and answers renewals while `answering`; once it stops,
 * a renewal never comes back (a partition, a frozen agent), while a blocking read still answers
 * after its wait with the stale "held" it saw before (it passed its barrier before the partition).
 */
class FakeAgent extends ApiClient {
  answering = true;
  /** Virtual send times of the renewals the agent accepted. */
  renewed: number[] = [];

  constructor(readonly clock: FakeClock) {
    super("http://fake.invalid");
  }

  override send(
    method: string,
    path: string,
    opts: { query?: Record<string, unknown>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const json = (v: unknown) =>
      new Response(JSON.stringify(v), { headers: { "X-Consul-Index": "7" } });
    if (path === "/v1/session/create") return Promise.resolve(json({ ID: SESSION }));
    if (path === `/v1/session/renew/${SESSION}`) {
      if (!this.answering) {
        return new Promise((_, reject) => { // hangs until aborted
          opts.signal?.addEventListener("abort", () => reject(new Error("aborted")));
        });
      }
      this.renewed.push(this.clock.now());
      return Promise.resolve(json([{ ID: SESSION }]));
    }
    if (method === "PUT" && path === "/v1/kv/jobs/.lock") return Promise.resolve(json(true));
    if (method === "GET" && path === "/v1/kv/jobs/.lock") {
      const held = json([{ Key: "jobs/.lock", Value: null, Session: SESSION, ModifyIndex: 7 }]);
      if (opts.query?.index === undefined) return Promise.resolve(held);
      return new Promise((resolve) => this.clock.setTimeout(() => resolve(held), 10_000));
    }
    return Promise.resolve(new Response("unexpected", { status: 500 }));
  }
}

Deno.test("acquire(): lost resolves at the deadline after the last accepted renewal's send, though reads still answer", async () => {
  const clock = new FakeClock();
  const agent = new FakeAgent(clock);
  const held = await acquire(agent, "jobs", { limit: 1, name: "t", clock });
  let lostAt: number | null = null;
  let reason = "";
  held.lost.then((r) => {
    lostAt = clock.now();
    reason = r;
  });
  // Renewals accepted: held for minutes.
  await clock.advance(120_000);
  assert.equal(lostAt, null);
  assert.ok(agent.renewed.length >= 20, `renewed ${agent.renewed.length} times`);
  // The agent stops answering renewals; the watch's blocking reads keep saying "held".
  agent.answering = false;
  await clock.advance(300_000);
  const lastSent = agent.renewed.at(-1)!;
  const deadline = lastSent + Math.min(LOCK_SESSION_TTL_S, LOCK_DELAY_S) * 1000 -
    LOCK_KILL_GRACE_MS;
  assert.equal(lostAt, deadline, reason);
  assert.match(reason, new RegExp(`no renewal of session ${SESSION} reached the agent`));
  await held.release().catch(() => {}); // the agent no longer answers
});

Deno.test("acquire() refuses a TTL or LockDelay not above the kill grace", async () => {
  const clock = new FakeClock();
  await assert.rejects(
    acquire(new FakeAgent(clock), "jobs", { limit: 1, name: "t", clock, lockDelayS: 5 }),
    /TTL and LockDelay must both exceed the kill grace/,
  );
});
