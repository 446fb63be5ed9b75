/**
 * Real certificates for TLS tests, made by the openssl command line (independent of the code
 * under test): a CA, a server certificate it signs for 127.0.0.1 and localhost, and a second CA
 * nobody trusts with a certificate of its own.
 *
 * @module
 */

export interface TestCerts {
  dir: string;
  /** The trusted CA's certificate file. */
  caCrt: string;
  /** A server certificate (IP 127.0.0.1, DNS localhost) signed by the CA, and its key. */
  crt: string;
  key: string;
  /** A certificate for the same names signed by another CA, and its key. */
  otherCrt: string;
  otherKey: string;
  /** The other CA's certificate file. */
  otherCaCrt: string;
  /** Removes the directory. */
  remove(): Promise<void>;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function ca(dir: string, name: string): Promise<void> {
  await openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`);
  await openssl(
    dir,
    ...["req", "-x509", "-new", "-key", `${name}.key`, "-subj", `/CN=${name}`, "-days", "2"],
    ...["-out", `${name}.crt`],
  );
}

async function leaf(dir: string, name: string, caName: string): Promise<void> {
  await openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`);
  await openssl(
    dir,
    "req",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    `/CN=${name}`,
    "-out",
    `${name}.csr`,
  );
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth,clientAuth\n",
  );
  await openssl(
    dir,
    ...["x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`],
    ...["-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`],
  );
}

/** Makes the certificates in a new temporary directory. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "berth-certs-" });
  await ca(dir, "ca");
  await leaf(dir, "server", "ca");
  await ca(dir, "otherca");
  await leaf(dir, "other", "otherca");
  return {
    dir,
    caCrt: `${dir}/ca.crt`,
    crt: `${dir}/server.crt`,
    key: `${dir}/server.key`,
    otherCrt: `${dir}/other.crt`,
    otherKey: `${dir}/other.key`,
    otherCaCrt: `${dir}/otherca.crt`,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
