import assert from "node:assert/strict";
import { makeTestCerts } from "../../test/test_certs.ts";
import { readCaFile, readTlsFiles } from "./tls_files.ts";

Deno.test("readTlsFiles() reads a matching certificate and key", async () => {
  const c = await makeTestCerts();
  try {
    const m = readTlsFiles(c.crt, c.key);
    assert.equal(m.certPem, await Deno.readTextFile(c.crt));
    assert.equal(m.keyPem, await Deno.readTextFile(c.key));
  } finally {
    await c.remove();
  }
});

Deno.test("readTlsFiles() names the file that is missing, not PEM or not matching", async (t) => {
  const c = await makeTestCerts();
  try {
    await t.step("missing certificate", () => {
      assert.throws(
        () => readTlsFiles(`${c.dir}/nope.crt`, c.key),
        { message: `--http-tls-cert ${c.dir}/nope.crt: cannot read (no such file)` },
      );
    });
    await t.step("a directory as key", () => {
      assert.throws(
        () => readTlsFiles(c.crt, c.dir),
        { message: `--http-tls-key ${c.dir}: cannot read (not a file)` },
      );
    });
    await t.step("not PEM", async () => {
      await Deno.writeTextFile(`${c.dir}/junk`, "hello");
      assert.throws(
        () => readTlsFiles(`${c.dir}/junk`, c.key),
        { message: `--http-tls-cert ${c.dir}/junk: not a PEM file` },
      );
    });
    await t.step("a key where the certificate belongs", () => {
      assert.throws(
        () => readTlsFiles(c.key, c.key),
        (e: Error) => e.message.startsWith(`--http-tls-cert ${c.key}: not a PEM certificate`),
      );
    });
    await t.step("a certificate where the key belongs", () => {
      assert.throws(
        () => readTlsFiles(c.crt, c.crt),
        (e: Error) => e.message.startsWith(`--http-tls-key ${c.crt}: not a PEM private key`),
      );
    });
    await t.step("the key of another certificate", () => {
      assert.throws(
        () => readTlsFiles(c.crt, c.otherKey),
        {
          message: `--http-tls-key ${c.otherKey}: the key does not belong to the certificate ` +
            `in --http-tls-cert ${c.crt}`,
        },
      );
    });
  } finally {
    await c.remove();
  }
});

Deno.test("readCaFile() takes a certificate and refuses a key or a missing file", async () => {
  const c = await makeTestCerts();
  try {
    assert.equal(readCaFile(c.caCrt), await Deno.readTextFile(c.caCrt));
    assert.throws(
      () => readCaFile(c.key),
      (e: Error) => e.message.startsWith(`BERTH_CACERT ${c.key}: not a PEM certificate`),
    );
    assert.throws(() => readCaFile(`${c.dir}/x`), {
      message: `BERTH_CACERT ${c.dir}/x: cannot read (no such file)`,
    });
  } finally {
    await c.remove();
  }
});
