import assert from "node:assert/strict";
import type { CheckResult, CheckStatus } from "../store/mod.ts";
import { judge, NEW_STREAK, type Streak } from "./hysteresis.ts";

const T = { successesBeforePassing: 1, failuresBeforeCritical: 2 };
const OK = { status: "passing" as const, output: "HTTP GET /h: 200 OK" };
const BAD = { status: "critical" as const, output: "HTTP GET /h: 500 Internal Server Error" };
const BUSY = { status: "warning" as const, output: "HTTP GET /h: 429 Too Many Requests" };
/** The store holds no result yet (a new instance or container): "awaiting first check". */
const AWAITING = null;

function streak(successes: number, failures: number): Streak {
  return { successes, failures, first: false };
}

Deno.test("judge() applies the first result at once and later flips only past the thresholds", async (t) => {
  const cases: {
    name: string;
    streak: Streak;
    result: { status: CheckStatus; output: string };
    stored: CheckResult | null;
    thresholds?: typeof T;
    propose: boolean;
  }[] = [
    {
      name: "first success ends awaiting",
      streak: NEW_STREAK,
      result: OK,
      stored: AWAITING,
      propose: true,
    },
    {
      name: "first failure replaces awaiting",
      streak: NEW_STREAK,
      result: BAD,
      stored: AWAITING,
      propose: true,
    },
    {
      name: "no stored result mid-streak (a new container): the result applies at once",
      streak: streak(0, 1),
      result: BAD,
      stored: AWAITING,
      propose: true,
    },
    {
      name: "first failure on passing flips at once",
      streak: NEW_STREAK,
      result: BAD,
      stored: OK,
      propose: true,
    },
    {
      name: "same status and output: nothing",
      streak: NEW_STREAK,
      result: OK,
      stored: OK,
      propose: false,
    },
    {
      name: "one failure keeps passing",
      streak: streak(5, 0),
      result: BAD,
      stored: OK,
      propose: false,
    },
    {
      name: "second failure flips to critical",
      streak: streak(0, 1),
      result: BAD,
      stored: OK,
      propose: true,
    },
    {
      name: "second failure may be a warning",
      streak: streak(0, 1),
      result: BUSY,
      stored: OK,
      propose: true,
    },
    {
      name: "one success ends critical",
      streak: streak(0, 4),
      result: OK,
      stored: BAD,
      propose: true,
    },
    {
      name: "successesBeforePassing 3: second success waits",
      streak: streak(1, 0),
      result: OK,
      stored: BAD,
      thresholds: { successesBeforePassing: 3, failuresBeforeCritical: 2 },
      propose: false,
    },
    {
      name: "successesBeforePassing 3: third success flips",
      streak: streak(2, 0),
      result: OK,
      stored: BAD,
      thresholds: { successesBeforePassing: 3, failuresBeforeCritical: 2 },
      propose: true,
    },
    {
      name: "warning to critical at once",
      streak: streak(0, 3),
      result: BAD,
      stored: BUSY,
      propose: true,
    },
    {
      name: "new reason while critical applies",
      streak: streak(0, 3),
      result: { status: "critical", output: "HTTP GET /h: 503 Service Unavailable" },
      stored: BAD,
      propose: true,
    },
    {
      name: "new output while passing applies",
      streak: streak(3, 0),
      result: { status: "passing", output: "HTTP GET /h: 204 No Content" },
      stored: OK,
      propose: true,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const got = judge(c.streak, c.result, c.stored, c.thresholds ?? T);
      assert.deepEqual(got.propose, c.propose ? c.result : null);
      assert.equal(got.streak.first, false);
    });
  }
});

Deno.test("judge() counts consecutive results and resets the other streak", () => {
  let s = NEW_STREAK;
  s = judge(s, OK, OK, T).streak;
  s = judge(s, OK, OK, T).streak;
  assert.deepEqual(s, { successes: 2, failures: 0, first: false });
  s = judge(s, BAD, OK, T).streak;
  assert.deepEqual(s, { successes: 0, failures: 1, first: false });
  s = judge(s, BUSY, OK, T).streak;
  assert.deepEqual(s, { successes: 0, failures: 2, first: false });
});
