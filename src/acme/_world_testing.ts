/**
 * The manager's test world: one replicated store (every member applies the same log), a clock,
 * a fake CA (manager_test.ts, manager_faults_test.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ClusterKey } from "../pki/cluster_key.ts";
import { type Command, Store } from "../store/mod.ts";
import { AcmeAnswers } from "./answers.ts";
import { AcmeManager, type AcmeManagerOptions } from "./manager.ts";
import { FakeCa, fakeCsr } from "./_testing.ts";

export const DIR = "https://ca.test/directory";
export const NAME = "web.example.com";
export const DAY = 86_400_000;

/** One replicated store (every member applies the same log), a clock, a fake CA. */
export class World {
  readonly store = Store.open(":memory:");
  readonly ca = new FakeCa();
  readonly box = ClusterKey.generate();
  readonly logs: string[] = [];
  /** What the members answer: the answers of a member that is not the leader. */
  readonly answers = new AcmeAnswers({
    store: this.store,
    tlsAlpnCert: () => ({ certPem: "", keyPem: "" }),
    log: (l) => this.logs.push(`follower: ${l}`),
  });
  index = 0;
  nowMs = Date.UTC(2026, 0, 1);
  names = [NAME];
  /** Results of every proposal, in order. */
  readonly results: { node: string; cmd: Command; ok: boolean; error?: string }[] = [];

  constructor() {
    this.ca.now = () => this.nowMs;
    this.ca.validator = ({ token }) => this.answers.http01(token);
    this.answers.start();
  }

  /** What edgeSilence says (null: every member heard). */
  silence: string | null = null;

  manager(
    node: string,
    term: () => number | null,
    more: Partial<AcmeManagerOptions> = {},
  ): AcmeManager {
    return new AcmeManager({
      edgeSilence: () => this.silence,
      store: this.store,
      node,
      leaderTerm: term,
      propose: (cmd) => {
        const result = this.store.apply(++this.index, cmd);
        this.results.push({ node, cmd, ok: result.ok, error: result.error });
        return Promise.resolve({ index: this.index, result });
      },
      box: this.box,
      directoryUrl: DIR,
      email: "ops@example.com",
      names: () => this.names,
      challengeType: "http-01",
      api: this.ca.client,
      csr: fakeCsr,
      now: () => this.nowMs,
      log: (l) => this.logs.push(`${node}: ${l}`),
      ...more,
    });
  }

  /** Runs `passes` passes of `m`, the clock moving `stepMs` after each. */
  async run(m: AcmeManager, passes: number, stepMs = 1000): Promise<void> {
    for (let i = 0; i < passes; i++) {
      await m.pass();
      this.nowMs += stepMs;
    }
  }

  /** Runs `m` until `done()` (at most `passes`). */
  async until(m: AcmeManager, done: () => boolean, passes = 60): Promise<void> {
    for (let i = 0; i < passes && !done(); i++) await this.run(m, 1);
    assert.ok(done(), `not reached in ${passes} passes; log:\n${this.logs.join("\n")}`);
  }

  cert(name = NAME) {
    return this.store.edgeCert(name);
  }
}
