/**
 * The joiner's side of enrollment: one standalone TLS connection to a member, without a client
 * certificate (the listener takes it as anonymous), speaking the transport's frames:
 *
 * 1. hello as a node in no cluster; the member answers welcome;
 * 2. `{t: "pki.ca"}` → the cluster CA certificate; its pin must equal the join token's, and the
 *    member's own certificate must chain to that CA — otherwise the connection closes and the
 *    secret is never sent (PinMismatchError);
 * 3. `{t: "pki.enroll", token: "<id>.<secret>", name, publicKey}` → `{certPem, caPem,
 *    clusterKey?}`, a certificate for `name` issued by the leader (the member forwards it
 *    there), and the cluster key when that member has it (_cluster_key.ts).
 *
 * A refusal by the cluster (wrong, expired, used-up or revoked token) comes back as a
 * RejectedError, and so does a wrong pin: neither changes on a retry. Anything else (cannot
 * connect, no leader yet) is a NoLeaderError or TimeoutError, worth a retry.
 *
 * @module
 */
import { connect, type TLSSocket } from "node:tls";
import { caPin, certInfo, verifyIssued } from "../pki/mod.ts";
import { formatHostPort, parseHostPort } from "../lib/host_port.ts";
import type { JoinToken } from "../lib/join_token.ts";
import { errorText } from "../lib/error_text.ts";
import { decodeBody, encodeBody, FrameReader, joinFrames } from "./_frame.ts";
import { type Frame, parseFrame } from "./_wire.ts";
import { FRAME_BYTES_MAX_DEFAULT, PROTOCOL_VERSION } from "./_transport_shared.ts";
import { errorFromCode, NoLeaderError, RejectedError, TimeoutError } from "./errors.ts";

/** The CA's pin is not the join token's: this is not the cluster the token is for. */
export class PinMismatchError extends RejectedError {
  override name = "PinMismatchError";
}

export interface EnrollOptions {
  /** A member's cluster address, `ip:port`. */
  addr: string;
  token: JoinToken;
  /** The member name the certificate is for (`--node`). */
  name: string;
  /** This node's public key, SubjectPublicKeyInfo DER (credentials.ts). */
  publicKey: Uint8Array;
  /** This node's cluster address, sent in the hello. */
  address: string;
  /** Dial from this address (the member's --bind host), as the transport does. */
  localAddress?: string;
  timeoutMs: number;
}

export interface Enrolled {
  certPem: string;
  caPem: string;
  /** The cluster key (32 bytes), when the member asked has it (_cluster_key.ts). */
  clusterKey?: Uint8Array;
}

/** Enrolls through the member at `o.addr` (module comment). */
export async function enroll(o: EnrollOptions): Promise<Enrolled> {
  const conn = await EnrollConnection.open(o);
  try {
    const ca = await conn.request({ t: "pki.ca" }) as { caPem?: unknown } | null;
    if (typeof ca?.caPem !== "string") throw new RejectedError("malformed pki.ca answer");
    let pin: string;
    try {
      pin = caPin(ca.caPem);
    } catch (e) {
      throw new RejectedError(`the member's CA certificate is unusable: ${errorText(e)}`);
    }
    if (pin !== o.token.pin) {
      throw new PinMismatchError(
        `the CA of ${o.addr} has pin ${pin}, not the join token's ${o.token.pin}: ` +
          `not the cluster this token is for; the secret was not sent`,
      );
    }
    if (!verifyIssued(conn.serverCertPem(), ca.caPem)) {
      throw new PinMismatchError(
        `${o.addr} presented a certificate not issued by the pinned CA; the secret was not sent`,
      );
    }
    const ans = await conn.request({
      t: "pki.enroll",
      token: `${o.token.id}.${o.token.secret}`,
      name: o.name,
      publicKey: o.publicKey,
    }) as { certPem?: unknown; caPem?: unknown; clusterKey?: unknown } | null;
    if (typeof ans?.certPem !== "string" || typeof ans.caPem !== "string") {
      throw new RejectedError("malformed pki.enroll answer");
    }
    if (ans.caPem !== ca.caPem || !verifyIssued(ans.certPem, ca.caPem)) {
      throw new RejectedError("the issued certificate does not chain to the pinned CA");
    }
    if (certInfo(ans.certPem).node !== o.name) {
      throw new RejectedError(`the issued certificate is not for ${o.name}`);
    }
    const key = ans.clusterKey;
    return {
      certPem: ans.certPem,
      caPem: ans.caPem,
      ...(key instanceof Uint8Array ? { clusterKey: key } : {}),
    };
  } finally {
    conn.close();
  }
}

/** What a refused join without a token tells the operator. */
export const NO_TOKEN_REFUSAL = "refused: TLS is on and joining needs a join token; start with " +
  "--join-token (or BERTH_JOIN_TOKEN), made by berth token create on a member";

/**
 * Without a join token: the join request is sent anyway, anonymously; a member with TLS closes
 * such a connection (and logs it). Always a RejectedError once a member was reached.
 */
export async function joinWithoutToken(o: Omit<EnrollOptions, "token">): Promise<never> {
  const conn = await EnrollConnection.open(o);
  try {
    await conn.request({ t: "join", name: o.name, address: o.address, nonce: "no-token" });
  } catch {
    // closed by the member: the refusal below
  } finally {
    conn.close();
  }
  throw new RejectedError(NO_TOKEN_REFUSAL);
}

/** One anonymous TLS connection: hello, then requests one at a time. */
class EnrollConnection {
  readonly #socket: TLSSocket;
  readonly #o: Omit<EnrollOptions, "token">;
  readonly #reader = new FrameReader(FRAME_BYTES_MAX_DEFAULT);
  #nextId = 1;
  #waiting: ((f: Frame | Error) => void) | undefined;
  #failed: Error | undefined;

  private constructor(socket: TLSSocket, o: Omit<EnrollOptions, "token">) {
    this.#socket = socket;
    this.#o = o;
    socket.on("data", (chunk: Uint8Array) => {
      const bad = this.#reader.push(chunk, (body) => {
        let f: Frame | string;
        try {
          f = parseFrame(decodeBody(body));
        } catch (e) {
          f = `undecodable frame: ${errorText(e)}`;
        }
        this.#deliver(typeof f === "string" ? new RejectedError(`${o.addr}: ${f}`) : f);
        return true;
      });
      if (bad !== null) this.#deliver(new RejectedError(`${o.addr}: ${bad}`));
    });
    socket.on("error", (e) => this.#deliver(new NoLeaderError(`${o.addr}: ${errorText(e)}`)));
    socket.on("close", () => this.#deliver(new NoLeaderError(`${o.addr} closed the connection`)));
  }

  /** Connects, completes TLS and the hello; rejects with a named error. */
  static open(o: Omit<EnrollOptions, "token">): Promise<EnrollConnection> {
    let hp;
    try {
      hp = parseHostPort(o.addr);
    } catch (e) {
      return Promise.reject(new RejectedError(`bad address ${o.addr}: ${errorText(e)}`));
    }
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: hp.host,
        port: hp.port,
        ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
        // No client certificate (anonymous), no CA yet: the CA is checked by its pin below.
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        minVersion: "TLSv1.3",
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new NoLeaderError(`${o.addr}: no TLS handshake in ${o.timeoutMs}ms`));
      }, o.timeoutMs);
      const early = (e: Error) => {
        clearTimeout(timer);
        reject(new NoLeaderError(`cannot reach ${formatHostPort(hp)}: ${errorText(e)}`));
      };
      socket.once("error", early);
      socket.once("secureConnect", () => {
        clearTimeout(timer);
        socket.off("error", early);
        const conn = new EnrollConnection(socket, o);
        conn.#hello().then(() => resolve(conn), (e) => {
          conn.close();
          reject(e);
        });
      });
    });
  }

  /** The member's own certificate, PEM. */
  serverCertPem(): string {
    const raw = this.#socket.getPeerCertificate(false)?.raw;
    if (raw === undefined) throw new RejectedError(`${this.#o.addr} presented no certificate`);
    const b64 = btoa(String.fromCharCode(...new Uint8Array(raw)));
    return `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{64}/g, "$&\n")}\n` +
      "-----END CERTIFICATE-----\n";
  }

  async #hello(): Promise<void> {
    this.#write({
      k: "hello",
      v: PROTOCOL_VERSION,
      clusterId: "",
      nodeId: 0,
      address: this.#o.address,
    });
    const f = await this.#next();
    if (f.k === "reject") throw new RejectedError(`${this.#o.addr} refused: ${f.reason}`);
    if (f.k !== "welcome") throw new RejectedError(`${this.#o.addr}: expected welcome`);
  }

  async request(body: unknown): Promise<unknown> {
    const id = this.#nextId++;
    this.#write({ k: "req", id, b: body });
    const f = await this.#next();
    if (f.k !== "res" || f.id !== id) {
      throw new RejectedError(`${this.#o.addr}: unexpected ${f.k} frame`);
    }
    if (f.err !== undefined) {
      throw (f.code === undefined ? undefined : errorFromCode(f.code, f.err)) ??
        new TimeoutError(`${this.#o.addr} failed: ${f.err}`);
    }
    return f.b;
  }

  close(): void {
    this.#socket.destroy();
  }

  #write(frame: unknown): void {
    this.#socket.write(joinFrames([encodeBody(frame)]));
  }

  #next(): Promise<Frame> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new TimeoutError(`${this.#o.addr}: no answer in ${this.#o.timeoutMs}ms`));
      }, this.#o.timeoutMs);
      this.#waiting = (f) => {
        clearTimeout(timer);
        this.#waiting = undefined;
        if (f instanceof Error) reject(f);
        else resolve(f);
      };
    });
  }

  #deliver(f: Frame | Error): void {
    if (f instanceof Error) this.#failed ??= f;
    const w = this.#waiting;
    if (w !== undefined) w(f);
  }
}
