/**
 * The end-to-end tests' Docker helpers: the `docker` CLI against the real engine, the test image
 * (busybox-static: httpd, nc, sh; built by scripts/test-image.sh) and its web containers, all
 * labelled `berth-e2e=1`. Re-exported by test/harness.ts.
 *
 * @module
 */
import { errorText } from "../src/lib/error_text.ts";

export const TEST_IMAGE = "berth-test:latest";

export async function docker(...args: string[]): Promise<string> {
  const out = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`docker ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

/** Fails with a clear message when no Docker engine answers (CI starts one). */
export async function requireDocker(): Promise<void> {
  try {
    await docker("image", "inspect", TEST_IMAGE);
  } catch (e) {
    throw new Error(
      `end-to-end tests need a Docker engine and the ${TEST_IMAGE} image: run ` +
        `scripts/docker-up.sh and scripts/test-image.sh (${errorText(e)})`,
    );
  }
}

/**
 * Runs a test container serving `body` over HTTP on container port 80 (`script`: its own `sh -c`
 * command instead; `args`: more `docker run` options, such as ports). Returns its name.
 */
export async function runWeb(
  opts: {
    name?: string;
    body?: string;
    script?: string;
    env?: Record<string, string>;
    labels?: Record<string, string>;
    args?: string[];
  },
): Promise<string> {
  const name = opts.name ?? `berth-e2e-${crypto.randomUUID().slice(0, 8)}`;
  const env = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  const labels = Object.entries(opts.labels ?? {}).flatMap(([k, v]) => ["-l", `${k}=${v}`]);
  await docker(
    "run",
    "-d",
    "--name",
    name,
    "-l",
    "berth-e2e=1",
    "-p",
    "127.0.0.1::80",
    ...env,
    ...labels,
    ...(opts.args ?? []),
    TEST_IMAGE,
    "sh",
    "-c",
    opts.script ??
      `mkdir -p /www && echo '${opts.body ?? ""}' > /www/index.html && exec httpd -f -p 80 -h /www`,
  );
  return name;
}

export async function removeContainers(names: string[]): Promise<void> {
  if (names.length === 0) return;
  await docker("rm", "-f", ...names).catch(() => {});
}
