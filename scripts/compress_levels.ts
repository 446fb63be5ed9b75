/**
 * How fast and how well gzip and Brotli compress at several levels, streamed in 16 KiB writes
 * as the proxy's compression middleware does (src/proxy/middleware/compress.ts): the figures
 * behind its GZIP_LEVEL and BROTLI_QUALITY (README "Compression").
 *
 * Usage: deno run -A scripts/compress_levels.ts
 *
 * Bodies: a 110 KB JSON document (an API list answer) and the README (~95 KB of Markdown).
 * Each setting: 5 warm-up runs, then the best of 5 rounds of 20 (the machine is shared).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import zlib from "node:zlib";

type Compressor = zlib.Gzip | zlib.BrotliCompress;

const items = Array.from({ length: 800 }, (_, i) => ({
  id: i,
  name: `service-${i % 37}`,
  node: `host-${i % 5}.example.internal`,
  port: 8000 + (i % 100),
  tags: ["web", i % 2 ? "canary" : "stable"],
  meta: { version: `1.${i % 9}.${i % 13}`, checks: i % 3 },
}));
const BODIES: [string, Buffer][] = [
  ["JSON", Buffer.from(JSON.stringify(items))],
  ["README", Buffer.from(await Deno.readTextFile(new URL("../README.md", import.meta.url)))],
];

/** Compresses `body` in 16 KiB writes; the compressed size. */
async function compressedBytes(make: () => Compressor, body: Buffer): Promise<number> {
  const z = make();
  let n = 0;
  z.on("data", (c: Buffer) => n += c.length);
  const done = new Promise((resolve) => z.once("end", resolve));
  for (let i = 0; i < body.length; i += 16384) z.write(body.subarray(i, i + 16384));
  z.end();
  await done;
  return n;
}

const gzip = (level: number) => () => zlib.createGzip({ level });
const brotli = (quality: number, size: number) => () =>
  zlib.createBrotliCompress({
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
      [zlib.constants.BROTLI_PARAM_LGWIN]: 18,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size,
    },
  });

for (const [name, body] of BODIES) {
  console.log(`${name}: ${body.length} bytes`);
  const settings: [string, () => Compressor][] = [
    ...[1, 4, 6].map((l): [string, () => Compressor] => [`gzip -${l}`, gzip(l)]),
    ...[1, 3, 4, 5].map((q): [string, () => Compressor] => [`br q${q}`, brotli(q, body.length)]),
  ];
  for (const [label, make] of settings) {
    for (let i = 0; i < 5; i++) await compressedBytes(make, body);
    let best = Infinity;
    let out = 0;
    for (let round = 0; round < 5; round++) {
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) out = await compressedBytes(make, body);
      best = Math.min(best, (performance.now() - t0) / 20);
    }
    const mbs = body.length / 1e6 / (best / 1000);
    console.log(
      `  ${label.padEnd(8)} ratio ${(body.length / out).toFixed(2)}  ` +
        `${best.toFixed(2)} ms per body  ${mbs.toFixed(0)} MB/s`,
    );
  }
}
