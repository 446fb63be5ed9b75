/**
 * The DNS settings a SIGHUP reloads (README "Shutdown and reload"), shared by DnsServer and the
 * DNS worker pool: which of them changed (`dnsChanges`), and forwarders replaced by new
 * recursors, each closed once the exchanges it had under way are over (`RetiredForwarders`).
 *
 * @module
 */
import type { HostPort } from "../lib/host_port.ts";
import { FORWARD_TIMEOUT_MS, type Forwarder } from "./forwarder.ts";

/** `--dns-ttl`, `--dns-service-ttl`, `--recursor` as read again. */
export interface DnsReload {
  ttl: number;
  serviceTtl: ReadonlyMap<string, number>;
  recursors: HostPort[];
}

/** Which settings of `next` differ from those in use. */
export function dnsChanges(
  now: { ttl: number; serviceTtl?: ReadonlyMap<string, number>; recursors: readonly HostPort[] },
  next: DnsReload,
): { ttls: boolean; recursors: boolean } {
  const was = now.serviceTtl ?? new Map<string, number>();
  const ttls = next.ttl !== now.ttl || next.serviceTtl.size !== was.size ||
    [...next.serviceTtl].some(([k, v]) => was.get(k) !== v);
  const recursors = JSON.stringify(next.recursors) !== JSON.stringify(now.recursors);
  return { ttls, recursors };
}

/** Forwarders replaced by a reload: each is closed once its exchanges under way are over. */
export class RetiredForwarders {
  readonly #timers = new Map<ReturnType<typeof setTimeout>, Forwarder>();

  /**
   * Closes `old` after the longest an exchange can take: UDP then TCP (`timeoutMs` each) to each
   * of its `recursors` in turn.
   */
  retire(old: Forwarder, recursors: number, timeoutMs = FORWARD_TIMEOUT_MS): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      old.close();
    }, 2 * timeoutMs * recursors);
    this.#timers.set(timer, old);
  }

  /** Closes every one now. */
  close(): void {
    for (const [timer, f] of this.#timers) {
      clearTimeout(timer);
      f.close();
    }
    this.#timers.clear();
  }
}
