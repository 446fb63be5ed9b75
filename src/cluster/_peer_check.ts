/**
 * Who a member lets in, with mutual TLS on (_security.ts): the transport's check of a peer after
 * the handshake, and the connections dropped when a member is removed.
 *
 * - **verifyPeer**: the certificate is of our cluster and its serial is recorded in the store as
 *   issued and not revoked (an allow-list: a certificate made with a copy of the CA key is
 *   refused); a member's hello id maps to the member of the certificate's name. A peer with a
 *   valid certificate that is no member yet may only make join requests (_rpc.ts).
 * - **A certificate this replica has not applied yet**: a member's renewal keeps its key, so an
 *   unrecorded certificate of a current member for the public key of one of its recorded,
 *   unrevoked certificates is that member's renewal (only the holder of that private key completes
 *   the handshake). Without this, a member restarted on an older state refused every peer that
 *   renewed meanwhile until their recorded certificates expired (up to a third of --cert-ttl),
 *   and could not catch up from them.
 * - **A restart after a stop longer than --cert-ttl** (the whole cluster may have been down): a
 *   member issues itself a new certificate from the CA in its store and records it once a leader
 *   is elected; until then peers accept an unrecorded certificate of a member all of whose
 *   recorded certificates expired (logged once per serial).
 * - **Revocation**: a conf change removing a member revokes its certificates in the store (the
 *   deny list, store/pki_state.ts); here every member then drops the connections of that name.
 *
 * @module
 */
import type { CertInfo } from "../pki/mod.ts";
import type { ClusterCore } from "./_core.ts";
import type { Hello } from "./transport.ts";
import type { RemovedNotices } from "./_removed_notice.ts";

/** How long a removed member's open connections stay (its last answers get through). */
export const DROP_GRACE_MS = 1000;

/** Unrecorded serials accepted under the restart exception, remembered to log each once. */
const EXCEPTED_MAX = 1024;

export class PeerCheck {
  readonly #c: ClusterCore;
  readonly #clusterId: () => string | undefined;
  #notices: RemovedNotices | undefined;
  /** Unrecorded serials accepted under the restart exception (logged once each). */
  readonly #excepted = new Set<string>();
  /** Member ids of the applied membership, to see who a change removed. */
  #memberIds = new Map<number, string>();
  /** Timers of pending dropPeer calls. */
  readonly #drops = new Set<ReturnType<typeof setTimeout>>();

  /** `clusterId`: our cluster's id (before joining, our certificate's). */
  constructor(core: ClusterCore, clusterId: () => string | undefined) {
    this.#c = core;
    this.#clusterId = clusterId;
  }

  /** Wires the removal notices (made after this unit). */
  attach(notices: RemovedNotices): void {
    this.#notices = notices;
  }

  /** The transport's check of a peer after the handshake (module comment). */
  verifyPeer(
    p: { hello: Hello & { remoteHost?: string }; cert: CertInfo | null; inbound: boolean },
  ): string | null {
    const { hello, cert } = p;
    if (cert === null) return p.inbound ? null : "the peer presented no certificate";
    const ours = this.#clusterId();
    if (ours !== undefined && cert.clusterId !== ours) {
      return `certificate of cluster ${cert.clusterId}, not ${ours}`;
    }
    const store = this.#c.store;
    const removed = hello.nodeId > 0 && this.#c.members.wasRemoved(hello.nodeId);
    // Before the first state arrived (a joiner) there is no record to check against.
    const status = store.pki.ca() === undefined ? "valid" : store.pki.certStatus(cert.serial);
    if (removed || status === "revoked") {
      // Dialed by us: only the notice below goes that way (no raft traffic to a non-member).
      if (!p.inbound) return null;
      if (hello.nodeId > 0) this.#notices?.tell(hello.nodeId, hello);
      return removed
        ? `member id ${hello.nodeId} (${cert.node}) was removed`
        : `certificate ${cert.serial} of ${cert.node} was revoked (the member was removed)`;
    }
    if (status === "unknown" && !this.#renewal(cert) && !this.#restartException(cert)) {
      // Not issued by this cluster's leader — or issued by an entry this replica has not
      // applied yet (a fresh enrollment): the peer's redial or join retry gets in.
      return `certificate ${cert.serial} of ${cert.node} is not recorded as issued (yet)`;
    }
    if (hello.nodeId > 0) {
      const members = store.members();
      const claimed = members.find((m) => m.id === hello.nodeId);
      if (claimed !== undefined && claimed.name !== cert.node) {
        return `hello claims member id ${hello.nodeId} (${claimed.name}) with a certificate ` +
          `for ${cert.node}`;
      }
      const other = members.find((m) => m.name === cert.node && m.id !== hello.nodeId);
      if (claimed === undefined && other !== undefined) {
        return `certificate for ${cert.node} (member id ${other.id}) used by id ${hello.nodeId}`;
      }
    }
    return null;
  }

  /**
   * Whether the unrecorded `cert` is a current member's renewal this replica has not applied
   * yet: its public key is that of a recorded, unrevoked certificate of the member (module
   * comment). A copy of the CA key alone cannot make one the handshake accepts.
   */
  #renewal(cert: CertInfo): boolean {
    const c = this.#c;
    if (!c.store.members().some((m) => m.name === cert.node)) return false;
    return c.store.pki.certsOf(cert.node).some((r) => !r.revoked && r.key === cert.keyHash);
  }

  /**
   * The one exception to the allow-list: a member of the cluster all of whose recorded
   * certificates expired (the cluster was stopped longer than --cert-ttl) presents one it issued
   * itself at start from the CA in its store (Security.prepareMember); it proposes `cert.record`
   * for it once a leader is elected, which needs these connections first. Logged once per serial.
   */
  #restartException(cert: CertInfo): boolean {
    const c = this.#c;
    if (!c.store.members().some((m) => m.name === cert.node)) return false;
    const now = c.o.now();
    if (c.store.pki.certsOf(cert.node).some((r) => !r.revoked && r.notAfter > now)) return false;
    if (!this.#excepted.has(cert.serial)) {
      if (this.#excepted.size >= EXCEPTED_MAX) this.#excepted.clear();
      this.#excepted.add(cert.serial);
      c.o.log(
        `cluster: accepted certificate ${cert.serial} of ${cert.node}, not recorded yet: every ` +
          `recorded certificate of that member expired (a restart after a long stop)`,
      );
    }
    return true;
  }

  /**
   * On every applied membership change: drop the connections of members it removed, after
   * DROP_GRACE_MS (the answer to a member's own `berth leave` still reaches it). Meanwhile
   * nothing gets through them: its certificate being revoked in the same apply, every request
   * on them is refused (_rpc.ts), new connections too, and raft sends it nothing.
   */
  watchRemovals(): void {
    const c = this.#c;
    const snapshot = () => new Map(c.store.members().map((m) => [m.id, m.name]));
    this.#memberIds = snapshot();
    c.store.subscribe((ch) => {
      if (!ch.tables.has("members")) return;
      const now = snapshot();
      for (const [id, name] of this.#memberIds) {
        if (now.has(id) || [...now.values()].includes(name)) continue;
        const t = setTimeout(() => {
          this.#drops.delete(t);
          if (!c.closed) c.transport.dropPeer(name);
        }, DROP_GRACE_MS);
        this.#drops.add(t);
      }
      this.#memberIds = now;
    });
  }

  /** Stops the timers (the cluster closes). */
  close(): void {
    for (const t of this.#drops) clearTimeout(t);
    this.#drops.clear();
  }
}
