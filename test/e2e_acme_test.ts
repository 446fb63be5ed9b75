/**
 * End to end, ACME with a real CA: Debian's pebble issues certificates to a 3-member cluster on
 * 127.0.0.1/.2/.3. pebble resolves names with berth's own DNS (the edge domain answers the proxy
 * members) and validates HTTP-01 on the port every member's plain proxy listens on (each on its
 * own address), so whichever member it reaches answers. Checked: a `berth.tls=acme` service (an
 * API registration, then a Docker container) gets its certificates, answered (also) by members
 * that do not lead, served over HTTPS by every member (curl trusting pebble's root); the leader
 * killed after it recorded an order but before its challenge was answered (held while a frozen
 * member is silent): the new leader resumes that same order, and exactly one certificate and
 * one account result; `berth cert renew` gets a new certificate. Run under `flock /tmp/berth-e2e.lock`.
 */
import assert from "node:assert/strict";
import {
  type AgentProc,
  apiJson,
  berthCli,
  leaderOf,
  runWeb,
  signalAgent,
  uniq,
} from "./harness.ts";
import { type AcmeCluster, acmeCluster, EDGE } from "./acme_cluster.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

interface AcmeView {
  accounts: { url: string | null }[];
  lease: { node: string; term: number } | null;
  names: { name: string; status: string; orderUrl: string | null; lastError: string }[];
  certificates: {
    name: string;
    serial: string;
    issuer: string;
    notBefore: number;
    notAfter: number;
    renewAt: number;
  }[];
}

const acmeOf = (a: AgentProc) => apiJson(a, "/v1/berth/acme?stale") as Promise<AcmeView>;

/** The serial of `name`'s ACME certificate on member `a`, once it has one. */
async function serialOn(a: AgentProc, name: string): Promise<string | undefined> {
  return (await acmeOf(a)).certificates.find((c) => c.name === name)?.serial;
}

/** GET https://NAME/ through member `a` with curl, trusting only `rootFile`; the body or false. */
async function curlHttps(
  a: AgentProc,
  name: string,
  port: number,
  rootFile: string,
): Promise<string | false> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "5",
      "--cacert",
      rootFile,
      "--resolve",
      `${name}:${port}:${a.host}`,
      `https://${name}:${port}/`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return out.success && new TextDecoder().decode(out.stdout);
}

/** Registers service `name` on member `a` (an API registration), asking for ACME. */
async function register(a: AgentProc, name: string, port: number, hosts: string[] = []) {
  const meta: Record<string, string> = { "berth.tls": "acme" };
  if (hosts.length > 0) meta["berth.http.host"] = [...hosts, `${name}.${EDGE}`].join(",");
  const r = await fetch(`${a.httpUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify({ Name: name, ID: name, Address: "127.0.0.1", Port: port, Meta: meta }),
  });
  assert.equal(r.status, 200, await r.text());
}

/** Waits until every member in `members` serves `names` over HTTPS with `want` as the body. */
async function servedByAll(c: AcmeCluster, members: AgentProc[], names: string[], want: string) {
  for (const m of members) {
    for (const n of names) {
      const body = await waitFor(
        `https://${n} through ${m.node}`,
        () => curlHttps(m, n, c.httpsPort, c.root),
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      assert.equal(body, want);
    }
  }
}

Deno.test({
  name:
    "e2e acme: pebble issues certificates to berth.tls=acme services (API, Docker) on a 3-member cluster, served over HTTPS by every member; members that do not lead answer challenges; a leader killed mid-order: the new leader resumes the order, one certificate; berth cert renew renews",
  ...e2e,
  async fn(t) {
    const c = await acmeCluster({ plain: true, docker: true });
    const { pebble, members, httpsPort, root, backendPort, containers } = c;
    const [m1, m2, m3] = members;
    try {
      const names = ["a", "b", "c", "web"].map((n) => `${n}.${EDGE}`);

      await t.step(
        "a service registered with berth.tls=acme gets its certificates on every member",
        async () => {
          const start = performance.now();
          await register(m2, "web", backendPort, ["a", "b", "c"].map((n) => `${n}.${EDGE}`));
          for (const m of members) {
            await waitFor(`certificates for ${names.join(", ")} on ${m.node}`, async () => {
              for (const n of names) if (await serialOn(m, n) === undefined) return false;
              return true;
            }, { timeoutMs: 60_000, intervalMs: 100 });
          }
          const stored = Math.round(performance.now() - start);
          console.log(
            `acme e2e: register → ${names.length} certificates on 3 members: ${stored} ms`,
          );
          const view = await acmeOf(m3);
          assert.equal(view.accounts.length, 1);
          assert.match(view.certificates[0]!.issuer, /Pebble Intermediate CA/);
          assert.deepEqual(view.names, [], "nothing left in flight");
          // Every member serves them over HTTPS: curl trusts only pebble's root.
          for (const m of members) {
            for (const n of names) {
              const body = await waitFor(
                `https://${n} through ${m.node}`,
                () => curlHttps(m, n, httpsPort, root),
                { timeoutMs: 15_000, intervalMs: 200 },
              );
              assert.equal(body, "hello from web\n");
            }
          }
          const ms = Math.round(performance.now() - start);
          console.log(`acme e2e: register → served over HTTPS by 3 members: ${ms} ms`);
          // Every member serves the same certificates.
          const serials = await Promise.all(
            members.map(async (m) => (await acmeOf(m)).certificates),
          );
          assert.deepEqual(serials[1], serials[0]);
          assert.deepEqual(serials[2], serials[0]);
        },
      );

      await t.step("members that do not lead answered pebble's challenges", async () => {
        const leader = await leaderOf(m1);
        const answeredBy = members.filter((m) =>
          /acme: answered the HTTP-01 challenge/.test(m.log())
        );
        assert.ok(
          answeredBy.some((m) => m.node !== leader),
          `only the leader ${leader} answered: ${answeredBy.map((m) => m.node).join(", ")}`,
        );
      });

      await t.step(
        "docker run of a berth.tls=acme container: its certificate served by every member",
        async () => {
          const start = performance.now();
          const name = `dweb.${EDGE}`;
          containers.push(
            await runWeb({
              name: uniq("berth-acme-"),
              body: "hello from docker",
              labels: { "berth.service": "dweb", "berth.tls": "acme" },
            }),
          );
          for (const m of members) {
            const body = await waitFor(
              `https://${name} through ${m.node}`,
              () => curlHttps(m, name, httpsPort, root),
              { timeoutMs: 60_000, intervalMs: 100 },
            );
            assert.equal(body, "hello from docker\n");
          }
          console.log(
            `acme e2e: docker run → served over HTTPS by 3 members: ${
              Math.round(performance.now() - start)
            } ms`,
          );
        },
      );

      await t.step(
        "the leader killed mid-order, its challenge not yet answered: the new leader resumes the same order; one certificate, one account",
        async () => {
          const late = `late.${EDGE}`;
          const answered = (m: AgentProc) =>
            m.log().includes(`acme: answered the HTTP-01 challenge for ${late}`);
          const issuedBefore = pebble.log().split("\n").filter((l) =>
            l.includes("Issued certificate")
          ).length;
          // Member 3 frozen: the leader holds challenge answers while a member the edge domain
          // names is silent (src/acme/edge_contact.ts), until --node-timeout (10 s) marks it
          // down; it logs why. Frozen before the transfer, so the new leader's first 3 s (held
          // too) and member 3's silence leave no gap. Member 2 leads, so member 1 (pebble's DNS)
          // stays up.
          signalAgent(m3, "SIGSTOP");
          let orderUrl: string;
          try {
            const moved = await berthCli(m1, "raft", "transfer-leader", m2.node);
            assert.equal(moved.code, 0, moved.out);
            await waitFor("m2 to lead", async () => await leaderOf(m1) === m2.node);
            await register(m1, "late", backendPort);
            orderUrl = await waitFor("late's order recorded, its answers held", async () => {
              if (!m2.log().includes(`acme: ${late}: the challenge waits: ${m3.node}`)) return;
              return (await acmeOf(m1)).names.find((n) => n.name === late)?.orderUrl ?? undefined;
            }, { timeoutMs: 8_000, intervalMs: 10 });
            await m2.kill();
          } finally {
            signalAgent(m3, "SIGCONT");
          }
          assert.ok(!members.some(answered), "late's challenge was answered before the kill");
          for (const m of [m1, m3]) {
            await waitFor(`late's certificate on ${m.node}`, () => serialOn(m, late), {
              timeoutMs: 90_000,
              intervalMs: 200,
            });
          }
          const issued = pebble.log().split("\n").filter((l) => l.includes("Issued certificate"));
          assert.equal(issued.length - issuedBefore, 1, "exactly one certificate for late");
          // The order the killed leader recorded is the one the CA finalized.
          const order = /Issued certificate serial \S+ for order (\S+)/.exec(issued.at(-1)!);
          assert.ok(order !== null, issued.at(-1));
          assert.ok(orderUrl.endsWith(`/${order[1]}`), `${orderUrl} vs order ${order[1]}`);
          const leader = (await acmeOf(m3)).lease?.node;
          assert.notEqual(leader, m2.node, "the new leader took the lease");
          const stored = `acme: certificate for ${late} from`;
          assert.ok(!m2.log().includes(stored), "the killed leader stored the certificate");
          assert.ok(
            [m1, m3].some((m) => m.node === leader && m.log().includes(stored)),
            `the new leader ${leader} did not store late's certificate`,
          );
          assert.ok([m1, m3].some(answered), "no member answered late's challenge after the kill");
          const accounts = pebble.log().match(/There are now (\d+) accounts in memory/g) ?? [];
          assert.deepEqual(accounts, ["There are now 1 accounts in memory"], "one account");
        },
      );

      await t.step("berth cert renew gets a new certificate, on every member left", async () => {
        const name = `web.${EDGE}`;
        const before = await serialOn(m3, name);
        const r = await berthCli(m3, "cert", "renew", name);
        assert.equal(r.code, 0, r.out);
        for (const m of [m1, m3]) {
          await waitFor(`a new certificate for ${name} on ${m.node}`, async () => {
            const s = await serialOn(m, name);
            return s !== undefined && s !== before;
          }, { timeoutMs: 60_000, intervalMs: 200 });
        }
      });
    } catch (e) {
      c.dump();
      throw e;
    } finally {
      await c.close();
    }
  },
});

Deno.test({
  name:
    "e2e acme: with --proxy-http off the members answer TLS-ALPN-01 on their HTTPS listener (also those that do not lead), serve the certificate, and renew it two-thirds through its lifetime",
  ...e2e,
  async fn() {
    // 45 s certificates: renewed 30 s after their start, with no one asking.
    const c = await acmeCluster({ plain: false, docker: false, certificateValiditySeconds: 45 });
    try {
      const [m1, m2] = c.members;
      const start = performance.now();
      await register(m2, "alpn", c.backendPort);
      const name = `alpn.${EDGE}`;
      await servedByAll(c, c.members, [name], "hello from web\n");
      console.log(
        `acme e2e (TLS-ALPN-01): register → served over HTTPS by 3 members: ${
          Math.round(performance.now() - start)
        } ms`,
      );
      const leader = await leaderOf(m1);
      const answeredBy = c.members.filter((m) =>
        m.log().includes(`acme: answered the TLS-ALPN-01 challenge for ${name}`)
      );
      assert.ok(
        answeredBy.some((m) => m.node !== leader),
        `only the leader ${leader} answered: ${answeredBy.map((m) => m.node).join(", ")}`,
      );
      assert.ok(!c.members.some((m) => m.log().includes("answered the HTTP-01 challenge")));
      // Renewal at two-thirds of the lifetime, by itself, on every member.
      const first = (await acmeOf(m1)).certificates.find((x) => x.name === name)!;
      assert.equal(
        first.renewAt,
        first.notBefore + Math.floor((first.notAfter - first.notBefore) * 2 / 3),
      );
      for (const m of c.members) {
        await waitFor(`the renewed certificate on ${m.node}`, async () => {
          const s = await serialOn(m, name);
          return s !== undefined && s !== first.serial;
        }, { timeoutMs: 90_000, intervalMs: 500 });
      }
      const second = (await acmeOf(m1)).certificates.find((x) => x.name === name)!;
      // Not before its time (pebble's times are whole seconds).
      assert.ok(second.notBefore >= first.renewAt - 1000, "renewed before two-thirds");
      await servedByAll(c, c.members, [name], "hello from web\n");
    } catch (e) {
      c.dump();
      throw e;
    } finally {
      await c.close();
    }
  },
});
