/**
 * Test certificates for the TLS transport, made with the `openssl` command in a temporary
 * directory: a CA and member certificates shaped like the cluster's (CN and DNS name = node,
 * URI `berth://<clusterId>/node/<node>`, server and client auth). Test code only.
 *
 * @module
 */
import type { TlsCredentials } from "./_transport_shared.ts";

export interface TestCa {
  caPem: string;
  /** A fresh key and a certificate for `node`, signed by this CA. */
  issue(node: string, clusterId?: string): Promise<TlsCredentials>;
  /** Removes the temporary directory. */
  remove(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** A new test CA (ECDSA P-256) named `name`. */
export async function testCa(name = "berth test CA"): Promise<TestCa> {
  const dir = await Deno.makeTempDir({ prefix: "berth-tls-" });
  await openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
  await openssl(dir, [
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-sha256",
    "-days",
    "30",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-out",
    "ca.crt",
  ]);
  const caPem = await Deno.readTextFile(`${dir}/ca.crt`);
  let n = 0;
  return {
    caPem,
    async issue(node, clusterId = "c1") {
      const f = `leaf${n++}`;
      await openssl(dir, [
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        `${f}.key`,
      ]);
      await openssl(dir, [
        "req",
        "-new",
        "-key",
        `${f}.key`,
        "-subj",
        `/CN=${node}`,
        "-out",
        `${f}.csr`,
      ]);
      await Deno.writeTextFile(
        `${dir}/${f}.ext`,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
          "extendedKeyUsage=serverAuth,clientAuth\n" +
          `subjectAltName=DNS:${node},URI:berth://${clusterId}/node/${node}\n`,
      );
      await openssl(dir, [
        "x509",
        "-req",
        "-in",
        `${f}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        `0x${
          crypto.getRandomValues(new Uint8Array(8)).reduce((s, b) =>
            s + b.toString(16).padStart(2, "0"), "7")
        }`,
        "-days",
        "3",
        "-sha256",
        "-extfile",
        `${f}.ext`,
        "-out",
        `${f}.crt`,
      ]);
      return {
        keyPem: await Deno.readTextFile(`${dir}/${f}.key`),
        certPem: await Deno.readTextFile(`${dir}/${f}.crt`),
        caPem,
      };
    },
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
