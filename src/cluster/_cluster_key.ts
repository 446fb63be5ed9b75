/**
 * The cluster key's distribution (the key and its file: src/pki/cluster_key.ts). The key never
 * enters the Raft log; its fingerprint does (`clusterkey.set`, first one wins), and a member
 * only ever uses, gives or keeps a key with the fingerprint the replicated state names, so no
 * two members can end up with different keys.
 *
 * - **Bootstrap**: the member's key file (or a new key written there) is named in the cluster's
 *   first entries.
 * - **Enrollment**: the member a joiner asked adds its key to the enrollment answer, only once
 *   the leader accepted the join token (the answer exists only then), over the pinned TLS
 *   connection; the joiner writes it to its data directory (_security.ts, enroll.ts).
 * - **A member without a key** (a data directory from before cluster keys, a `--tls off`
 *   cluster, an enrollment answer without one) fetches it from the other members with the
 *   `clusterkey.get` request, which members alone may make (_rpc.ts), and keeps it only when its
 *   fingerprint is the state's.
 * - **No member has one** (a cluster bootstrapped before cluster keys): the leader makes one,
 *   writes it to `cluster-key.candidate` first (so a crash never loses a key the state names),
 *   proposes its fingerprint, and makes it its key only once that fingerprint won; a leader
 *   whose proposal lost drops its candidate and fetches the winner.
 *
 * The key is never logged: log lines name it by its id (the start of its fingerprint).
 *
 * @module
 */
import {
  CLUSTER_KEY_FILE,
  ClusterKey,
  loadOrCreateClusterKey,
  saveClusterKey,
} from "../pki/mod.ts";
import { writeFileAtomic } from "../lib/atomic_file.ts";
import { errorText } from "../lib/error_text.ts";
import type { Command } from "../store/mod.ts";
import type { ClusterCore } from "./_core.ts";
import { NoLeaderError, RejectedError } from "./errors.ts";
import type { Proposals } from "./_proposals.ts";
import { request } from "./_requests.ts";
import type { ClusterKeyOptions } from "./types.ts";

/** How often a member without the cluster's key looks again. */
export const KEY_CHECK_MS = 1000;
/** How long a failed fetch or proposal waits before the next try. */
export const KEY_RETRY_MS = 5000;
/** How long one member has to answer `clusterkey.get`. */
export const KEY_FETCH_TIMEOUT_MS = 5000;
/** A leader's key not yet named by the state. */
export const CANDIDATE_FILE = `${CLUSTER_KEY_FILE}.candidate`;

export class KeyShare {
  readonly #c: ClusterCore;
  readonly #o: ClusterKeyOptions | undefined;
  #proposals: Proposals | undefined;
  #nextAt = 0;
  #busy = false;
  readonly #logged = new Set<string>();

  constructor(core: ClusterCore, o: ClusterKeyOptions | undefined) {
    this.#c = core;
    this.#o = o;
    // A restart: the state already names the key, so a wrong key file never seals anything.
    const fp = core.store.clusterKeyFingerprint();
    if (fp !== undefined) o?.box.expect(fp);
    if (o?.inClear === true) {
      core.o.log(
        "cluster: warning: --tls off --dev: the cluster key (it seals the certificate keys) " +
          "travels in clear to any peer that claims a member's id; a trusted network only",
      );
    }
  }

  /** Whether `clusterkey.get` may be answered on plain TCP (ClusterKeyOptions.inClear). */
  get inClear(): boolean {
    return this.#o?.inClear === true;
  }

  attach(proposals: Proposals): void {
    this.#proposals = proposals;
  }

  /** At bootstrap: this member's key (its file, or a new one written there), named in Raft. */
  bootstrapCommands(): Command[] {
    const o = this.#o;
    if (o === undefined) return [];
    let key = o.box.key();
    if (key === undefined) {
      key = loadOrCreateClusterKey(o.dir);
      o.box.set(key);
    }
    return [{ type: "clusterkey.set", fingerprint: key.fingerprint }];
  }

  /** The key for a joiner the leader accepted; undefined when this member has not got it. */
  forJoiner(): Uint8Array | undefined {
    const box = this.#o?.box;
    return box?.ready ? box.key()!.bytes() : undefined;
  }

  /** `clusterkey.get` from a member (checked by _rpc.ts): the key the state names. */
  answer(): { key: Uint8Array } {
    const key = this.forJoiner();
    if (key === undefined) throw new NoLeaderError("this member has not got the cluster key");
    return { key };
  }

  /**
   * A key from an enrollment answer: kept (file and box) when well-formed; the state's
   * fingerprint, once applied, is checked against it (ClusterKeyBox.expect).
   */
  received(bytes: unknown): void {
    const o = this.#o;
    if (o === undefined || o.box.key() !== undefined) return;
    if (bytes === undefined) {
      this.#c.o.log("cluster: the enrollment answer had no cluster key; fetching it from a member");
      return;
    }
    try {
      if (!(bytes instanceof Uint8Array)) throw new Error("not bytes");
      const key = new ClusterKey(bytes);
      saveClusterKey(o.dir, key);
      o.box.set(key);
      this.#c.o.log(`cluster: got the cluster key ${key.id} with the enrollment answer`);
    } catch (e) {
      this.#c.o.log(
        `cluster: the cluster key in the enrollment answer is unusable (${errorText(e)}); ` +
          "fetching it from a member",
      );
    }
  }

  /** Each tick: see the module comment; one step at a time, every KEY_CHECK_MS at most. */
  tick(): void {
    const c = this.#c;
    const o = this.#o;
    if (o === undefined || c.node === undefined || c.closed || this.#busy) return;
    const now = c.o.now();
    if (now < this.#nextAt) return;
    this.#nextAt = now + KEY_CHECK_MS;
    const fp = c.store.clusterKeyFingerprint();
    if (fp !== undefined) o.box.expect(fp);
    const key = o.box.key();
    if (key !== undefined) {
      if (fp === undefined && c.role === "leader") this.#run("name", this.#name(key));
      else if (fp !== undefined && key.fingerprint !== fp) {
        this.#logOnce(
          `mismatch:${key.id}`,
          `cluster: this member's cluster key ${key.id} (${o.dir}/${CLUSTER_KEY_FILE}) is not ` +
            `the cluster's ${fp.slice(0, key.id.length)}: it cannot seal or open certificate ` +
            "keys; move the file away and restart the member to fetch the cluster's",
        );
      }
      return;
    }
    if (fp !== undefined) {
      if (this.#promoteCandidate(fp)) return;
      this.#run("fetch", this.#fetch(fp));
    } else if (c.role === "leader") {
      this.#run("make", this.#makeKey());
    }
  }

  /** Runs one step; a failure is retried after KEY_RETRY_MS, logged once per kind of step. */
  #run(kind: string, p: Promise<void>): void {
    this.#busy = true;
    p.then(() => this.#logged.delete(`fail:${kind}`), (e) => {
      this.#nextAt = this.#c.o.now() + KEY_RETRY_MS;
      this.#logOnce(`fail:${kind}`, `cluster: cluster key: ${errorText(e)}; retrying`);
    }).finally(() => this.#busy = false);
  }

  #logOnce(key: string, line: string): void {
    if (this.#logged.has(key)) return;
    if (this.#logged.size >= 64) this.#logged.clear();
    this.#logged.add(key);
    this.#c.o.log(line);
  }

  /** The leader names its own key (it had one but the state names none yet). */
  async #name(key: ClusterKey): Promise<void> {
    const p = await this.#proposals!.propose({
      type: "clusterkey.set",
      fingerprint: key.fingerprint,
    });
    if (!p.result.ok) throw new RejectedError(p.result.error ?? "refused");
  }

  /** The leader, with no key named anywhere: a candidate, proposed, kept if it won. */
  async #makeKey(): Promise<void> {
    const o = this.#o!;
    const path = `${o.dir}/${CANDIDATE_FILE}`;
    let candidate = readCandidate(path);
    if (candidate === undefined) {
      candidate = ClusterKey.generate();
      writeFileAtomic(path, candidate.text(), 0o600);
    }
    const p = await this.#proposals!.propose({
      type: "clusterkey.set",
      fingerprint: candidate.fingerprint,
    });
    if (p.result.ok) {
      this.#promoteCandidate(candidate.fingerprint);
      this.#c.o.log(
        `cluster: made the cluster key ${candidate.id}: no member had one (a cluster made ` +
          "before cluster keys)",
      );
      return;
    }
    removeFile(path); // another key won: fetched next
  }

  /**
   * A candidate left by makeKey (this call or a run before a crash): made this member's key
   * when the state names it (true), else removed.
   */
  #promoteCandidate(fp: string): boolean {
    const o = this.#o!;
    const path = `${o.dir}/${CANDIDATE_FILE}`;
    const candidate = readCandidate(path);
    if (candidate === undefined) return false;
    if (candidate.fingerprint !== fp) {
      removeFile(path);
      return false;
    }
    saveClusterKey(o.dir, candidate);
    removeFile(path);
    o.box.set(candidate);
    return true;
  }

  /** Asks the other members in turn for the key whose fingerprint is `fp`. */
  async #fetch(fp: string): Promise<void> {
    const c = this.#c;
    const o = this.#o!;
    const own = c.addresses.get(c.self);
    const addrs = [...new Set(c.addresses.values())].filter((a) => a !== own);
    const leader = c.addresses.get(c.leader);
    if (leader !== undefined && leader !== own) addrs.unshift(leader);
    const why: string[] = [];
    for (const addr of new Set(addrs)) {
      try {
        const ans = await request(c, {
          addr,
          body: { t: "clusterkey.get" },
          timeoutMs: KEY_FETCH_TIMEOUT_MS,
        }) as { key?: unknown } | null;
        if (!(ans?.key instanceof Uint8Array)) throw new Error("malformed answer");
        const key = new ClusterKey(ans.key);
        if (key.fingerprint !== fp) throw new Error(`gave key ${key.id}, not the cluster's`);
        saveClusterKey(o.dir, key);
        o.box.set(key);
        c.o.log(`cluster: fetched the cluster key ${key.id} from ${addr}`);
        return;
      } catch (e) {
        why.push(`${addr}: ${errorText(e)}`);
      }
    }
    throw new NoLeaderError(
      `no member gave the cluster key ${fp.slice(0, 16)} (${why.join("; ") || "no member known"})`,
    );
  }
}

function readCandidate(path: string): ClusterKey | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return ClusterKey.parse(text);
  } catch {
    removeFile(path); // a write cut short: never proposed
    return undefined;
  }
}

function removeFile(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
