/**
 * Edge (HTTPS) certificates for the HTTPS end-to-end tests and `deno task bench https`, made by
 * the openssl command line (independent of the code under test): one CA and leaf certificates
 * it signs for the names asked (ECDSA P-256, a DNS SAN per name). test/https_client.ts asks a
 * listener what it serves.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/** A leaf certificate made by makeEdgeCerts(): its files and the sha256 of its DER, hex. */
export interface EdgeLeaf {
  crt: string;
  key: string;
  fingerprint: string;
}

export interface EdgeCerts {
  dir: string;
  /** The CA's certificate file (what a client trusts, e.g. `curl --cacert`). */
  caCrt: string;
  /** Leaf name (the file stem asked for) → its files. */
  leaves: Map<string, EdgeLeaf>;
  leaf(name: string): EdgeLeaf;
  remove(): Promise<void>;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** The sha256 of a PEM certificate's (first) DER, lower-case hex without colons. */
export function pemFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replaceAll(":", "").toLowerCase();
}

/**
 * Makes a CA and, for each `stem → names`, a leaf signed by it with those DNS names (the first
 * is also its CN), in a new temporary directory (`dir` when given).
 */
export async function makeEdgeCerts(
  leaves: Record<string, string[]>,
  opts: { dir?: string; days?: number } = {},
): Promise<EdgeCerts> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "berth-edge-certs-" });
  const days = String(opts.days ?? 2);
  await openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key");
  await openssl(
    dir,
    ...["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=berth edge test CA"],
    ...["-days", days, "-out", "ca.crt"],
  );
  const made = new Map<string, EdgeLeaf>();
  for (const [stem, names] of Object.entries(leaves)) {
    await openssl(
      dir,
      "ecparam",
      "-name",
      "prime256v1",
      "-genkey",
      "-noout",
      "-out",
      `${stem}.key`,
    );
    await openssl(
      dir,
      ...["req", "-new", "-key", `${stem}.key`, "-subj", `/CN=${names[0]}`, "-out", `${stem}.csr`],
    );
    await Deno.writeTextFile(
      `${dir}/${stem}.ext`,
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nbasicConstraints=CA:FALSE\n` +
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    await openssl(
      dir,
      ...["x509", "-req", "-in", `${stem}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key"],
      ...["-CAcreateserial", "-days", days, "-extfile", `${stem}.ext`, "-out", `${stem}.crt`],
    );
    const crt = `${dir}/${stem}.crt`;
    made.set(stem, {
      crt,
      key: `${dir}/${stem}.key`,
      fingerprint: pemFingerprint(await Deno.readTextFile(crt)),
    });
  }
  return {
    dir,
    caCrt: `${dir}/ca.crt`,
    leaves: made,
    leaf: (name) => {
      const l = made.get(name);
      if (l === undefined) throw new Error(`no edge test certificate called ${name}`);
      return l;
    },
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
