/**
 * This member's TLS material in its data directory:
 *
 * | file         | what                                                        | mode |
 * |--------------|-------------------------------------------------------------|------|
 * | `node.key`   | the member's private key (P-256); made once, never leaves   | 0600 |
 * | `node.crt`   | its current certificate (enrollment, renewal replace it)    | 0644 |
 * | `ca.crt`     | the cluster CA's certificate                                | 0644 |
 * | `join-token` | the bootstrap join token (`--bootstrap` only)               | 0600 |
 *
 * Files are replaced atomically (written beside, then renamed); a file holding a secret is
 * created with mode 0600 and chmod-ed so, whatever the umask. The certificate in use is kept in
 * memory: `current()` is what every new cluster connection presents.
 *
 * @module
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { type CertInfo, certInfo, generateKeyPair } from "../pki/mod.ts";
import { errorText } from "../lib/error_text.ts";
import { writeFileAtomic } from "../lib/atomic_file.ts";

export const NODE_KEY_FILE = "node.key";
export const NODE_CERT_FILE = "node.crt";
export const CA_CERT_FILE = "ca.crt";
export const JOIN_TOKEN_FILE = "join-token";

/** The PEMs a TLS connection presents and checks with. */
export interface Credentials {
  keyPem: string;
  certPem: string;
  caPem: string;
}

function readIfThere(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`cannot read ${path}: ${errorText(e)}`);
  }
}

export class NodeCredentials {
  readonly dir: string;
  #keyPem: string | undefined;
  #certPem: string | undefined;
  #caPem: string | undefined;
  #info: CertInfo | undefined;

  /** Reads whatever of the files `dir` holds (none is required yet). */
  constructor(dir: string) {
    this.dir = dir;
    this.#keyPem = readIfThere(`${dir}/${NODE_KEY_FILE}`);
    this.#caPem = readIfThere(`${dir}/${CA_CERT_FILE}`);
    const cert = readIfThere(`${dir}/${NODE_CERT_FILE}`);
    if (cert !== undefined) this.#setCert(cert, `${dir}/${NODE_CERT_FILE}`);
  }

  /** Whether any of node.crt or ca.crt is there (a member of a cluster with TLS). */
  get enrolled(): boolean {
    return this.#certPem !== undefined && this.#caPem !== undefined && this.#keyPem !== undefined;
  }

  /** What the current certificate says; undefined before enrollment. */
  get info(): CertInfo | undefined {
    return this.#info;
  }

  get caPem(): string | undefined {
    return this.#caPem;
  }

  /** The private key, made (and written, 0600) on first use. */
  keyPem(): string {
    if (this.#keyPem === undefined) {
      const pair = generateKeyPair();
      writeFileAtomic(`${this.dir}/${NODE_KEY_FILE}`, pair.privateKeyPem, 0o600);
      this.#keyPem = pair.privateKeyPem;
    }
    return this.#keyPem;
  }

  /** The public key (SubjectPublicKeyInfo, DER) a certificate is asked for. */
  publicKeyDer(): Uint8Array {
    const pub = createPublicKey(createPrivateKey(this.keyPem()));
    return new Uint8Array(pub.export({ type: "spki", format: "der" }));
  }

  /** What a new connection presents; throws before enrollment. */
  current(): Credentials {
    if (this.#certPem === undefined || this.#caPem === undefined) {
      throw new Error(`no certificate in ${this.dir} yet (join with --join-token)`);
    }
    return { keyPem: this.keyPem(), certPem: this.#certPem, caPem: this.#caPem };
  }

  /** Stores a new certificate (and the CA's, when given): on disk, then in use. */
  save(certPem: string, caPem?: string): void {
    const info = certInfo(certPem);
    if (caPem !== undefined) writeFileAtomic(`${this.dir}/${CA_CERT_FILE}`, caPem, 0o644);
    writeFileAtomic(`${this.dir}/${NODE_CERT_FILE}`, certPem, 0o644);
    if (caPem !== undefined) this.#caPem = caPem;
    this.#certPem = certPem;
    this.#info = info;
  }

  #setCert(pem: string, path: string): void {
    try {
      this.#info = certInfo(pem);
    } catch (e) {
      throw new Error(`${path}: ${errorText(e)}`);
    }
    this.#certPem = pem;
  }
}
