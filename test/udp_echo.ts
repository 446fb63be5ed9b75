/**
 * A UDP echo for the e2e tests: a static C program (the test image's busybox answers no UDP)
 * mounted into containers, and a loopback UDP client to talk to it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import dgram from "node:dgram";

/** A UDP echo in C, built static so that it runs in the busybox-static test image. */
export const UDP_ECHO_C = `
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(9000);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
  const char *name = argc > 1 ? argv[1] : "echo";
  size_t n0 = strlen(name);
  char in[2048], out[2100];
  for (;;) {
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(s, in, sizeof in, 0, (struct sockaddr *)&from, &len);
    if (n < 0) continue;
    memcpy(out, name, n0);
    out[n0] = ':';
    memcpy(out + n0 + 1, in, n);
    sendto(s, out, n0 + 1 + n, 0, (struct sockaddr *)&from, len);
  }
}
`;

/**
 * Builds the UDP echo (gcc -static) into a temp dir. The test image's busybox `nc` has no UDP
 * mode (Debian's busybox-static: `nc [-iN] [-wN] [-l] [-p PORT] … [-e PROG]`) and no other
 * applet answers UDP, so the containers run this instead.
 */
export async function buildUdpEcho(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "berth-udp-echo-" });
  await Deno.writeTextFile(`${dir}/udp_echo.c`, UDP_ECHO_C);
  const out = await new Deno.Command("gcc", {
    args: ["-static", "-O2", "-o", `${dir}/udp_echo`, `${dir}/udp_echo.c`],
    stderr: "piped",
  }).output().catch((e) => {
    throw new Error(`the UDP e2e test builds a static UDP echo with gcc: ${e}`);
  });
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  await Deno.chmod(`${dir}/udp_echo`, 0o755);
  return dir;
}

/** A UDP client bound on loopback: `ask` sends a datagram, resolves with the answer or "". */
export async function udpClient() {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  let waiting: ((a: string) => void) | null = null;
  s.on("message", (m) => {
    const w = waiting;
    waiting = null;
    w?.(m.toString());
  });
  return {
    ask(port: number, text: string, waitMs = 2_000): Promise<string> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting = null;
          resolve("");
        }, waitMs);
        waiting = (a) => {
          clearTimeout(timer);
          resolve(a);
        };
        s.send(Buffer.from(text), port, "127.0.0.1");
      });
    },
    close: () => s.close(),
  };
}
