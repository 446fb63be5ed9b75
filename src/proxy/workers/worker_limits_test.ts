import assert from "node:assert/strict";
import { HANDSHAKES_MAX, HANDSHAKES_PER_IP_MAX } from "../https_listener.ts";
import { CONNECTIONS_MAX } from "../proxy_options.ts";
import { UPSTREAM_FREE_SOCKETS_MAX, UPSTREAM_SOCKETS_MAX } from "../upstream_pool.ts";
import { workerLimits } from "./worker_limits.ts";

Deno.test("workerLimits() with one worker gives the whole caps", () => {
  assert.deepEqual(workerLimits(1), {
    socketsMax: UPSTREAM_SOCKETS_MAX,
    freeSocketsMax: UPSTREAM_FREE_SOCKETS_MAX,
    connectionsMax: CONNECTIONS_MAX,
    handshakesMax: HANDSHAKES_MAX,
    handshakesPerIpMax: HANDSHAKES_PER_IP_MAX,
    capShares: 1,
  });
});

Deno.test("workerLimits() divides each cap by the workers, rounded up", () => {
  assert.deepEqual(workerLimits(2), {
    socketsMax: 128,
    freeSocketsMax: 128,
    connectionsMax: 5_000,
    handshakesMax: 512,
    handshakesPerIpMax: 32,
    capShares: 2,
  });
  assert.deepEqual(workerLimits(3), {
    socketsMax: 86,
    freeSocketsMax: 86,
    connectionsMax: 3_334,
    handshakesMax: 342,
    handshakesPerIpMax: 22,
    capShares: 3,
  });
  const l = workerLimits(64);
  assert.equal(l.socketsMax, 4);
  assert.equal(l.handshakesPerIpMax, 1);
  assert.ok(l.socketsMax * 64 >= UPSTREAM_SOCKETS_MAX, "the shares add up to the cap at least");
});
