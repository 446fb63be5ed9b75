/**
 * The cluster's ACME orders, run by the leader alone. Each tick (ACME_TICK_MS) while this member
 * leads, one bounded pass:
 *
 * 1. When a name is asked for or in flight, in a new term, claim the lease (`acme.claim`): from then on apply refuses every ACME write
 *    of an older term, so a deposed leader's late steps change nothing (acme_state.ts).
 * 2. The account of `--acme-directory`: its key is proposed first (first wins), then registered
 *    with the CA, which answers the same account for the same key: two leaders never make two.
 *    A CA that no longer knows the account (account.ts `accountGone`) gets the same key again.
 * 3. The names to order (names.ts) that are due: no certificate yet, or the ACME one two-thirds
 *    through its lifetime, or a renewal asked (`berth cert renew`). A name covered by a manual
 *    certificate is left alone. A row of a name no longer wanted is dropped.
 * 4. Up to ACME_CONCURRENT_MAX due names whose next attempt and poll time have come each take
 *    one step of their order (order_step.ts), recorded with the row's modifyIndex. Challenges
 *    are answered only while the leader hears from every member the CA may reach
 *    (edge_contact.ts), and not in its first EDGE_CONTACT_MAX_MS. A failure
 *    records the CA's error and the next attempt (backoff from 1 min, 1 h after a failed
 *    validation, doubling to 24 h, at least Retry-After). A step that makes a new order spends
 *    the hour's budget (order_budget.ts); names that never failed go first. A certificate lands with `cert.put` (source "acme") in the same batch as the
 *    row's drop.
 *
 * Nothing waits on the CA between passes; a pass still running when the next tick comes is
 * left to finish. Leadership lost: in-memory state (poll times, the client) is forgotten.
 *
 * @module
 */
import type { SecretBox } from "../pki/cluster_key.ts";
import { sealEdgeCert } from "../pki/edge_cert.ts";
import { errorText } from "../lib/error_text.ts";
import type {
  AcmeChallengeType,
  AcmeNameSpec,
  AcmeNameState,
  ApplyResult,
  Command,
  EdgeCert,
  Store,
} from "../store/mod.ts";
import { ACME_ERROR_CHARS_MAX } from "../store/mod.ts";
import type { AcmeApi, AcmeApiFactory } from "./client_api.ts";
import { errorFacts } from "./client_api.ts";
import { accountGone, accountKeyContext, newAccountKey, newKeyPem } from "./account.ts";
export { accountKeyContext } from "./account.ts";
import {
  needsNewOrder,
  OrderFailed,
  type StepContext,
  stepOrder,
  ValidationFailed,
} from "./order_step.ts";
import {
  backoffMs,
  NEW_ORDERS_PER_HOUR,
  nextPollMs,
  POLL_MIN_MS,
  renewAt,
  VALIDATION_BACKOFF_MIN_MS,
} from "./timing.ts";
import { EDGE_CONTACT_MAX_MS } from "./edge_contact.ts";
import { OrderBudget } from "./order_budget.ts";

/** Time between passes. */
export const ACME_TICK_MS = 500;
/** Most names stepped in one pass. */
export const ACME_CONCURRENT_MAX = 4;

export interface AcmeManagerOptions {
  store: Store;
  /** This member's name (in the lease). */
  node: string;
  /** This member's Raft term while it leads, else null. */
  leaderTerm: () => number | null;
  /** Proposes while this member leads; refused otherwise (never forwarded). */
  propose: (cmd: Command) => Promise<{ index: number; result: ApplyResult }>;
  box: SecretBox;
  directoryUrl: string;
  /** Contact for the account ("" for none). */
  email: string;
  /** The names to order now (names.ts). */
  names: () => string[];
  challengeType: AcmeChallengeType;
  /** A protocol client for an account. */
  api: AcmeApiFactory;
  csr: StepContext["csr"];
  /**
   * Why challenges must wait (a member the edge domain names is not heard from:
   * edge_contact.ts `silentEdgeMember`), or null. Default: never.
   */
  edgeSilence?: () => string | null;
  /** A new ECDSA P-256 key, PKCS#8 PEM (default: node:crypto). */
  newKeyPem?: () => string;
  /** A new account key, a private JWK (default: ECDSA P-256 from node:crypto). */
  newAccountKey?: () => JsonWebKey;
  now?: () => number;
  log: (line: string) => void;
  tickMs?: number;
  concurrency?: number;
  /** New orders in an hour at most (default NEW_ORDERS_PER_HOUR). */
  newOrdersPerHour?: number;
}

export class AcmeManager {
  readonly #o: AcmeManagerOptions;
  readonly #now: () => number;
  /** The term whose lease this member holds, null while it does not lead (or has not claimed). */
  #term: number | null = null;
  /** The term this member was last seen leading in, and since when (its view of the members'
   * contact is true only after a while: a new leader counts every member as just heard). */
  #leadingTerm: number | null = null;
  #leadingSinceMs = 0;
  /** Per name: why its challenge answers wait, as last logged. */
  readonly #held = new Map<string, string>();
  #api: Promise<AcmeApi> | null = null;
  /** The CA said it does not know the stored account: register its key again (accountGone). */
  #reregister = false;
  /** Per name: when to look at its order again, and the last poll delay. */
  readonly #poll = new Map<string, { at: number; delayMs: number }>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #pass: Promise<void> | null = null;
  #budget: OrderBudget;
  #certsSeen:
    | { index: number; byName: Map<string, EdgeCert>; manual: EdgeCert[] }
    | undefined;
  #closed = false;

  constructor(o: AcmeManagerOptions) {
    this.#o = o;
    this.#now = o.now ?? (() => Date.now());
    this.#budget = new OrderBudget(o.newOrdersPerHour ?? NEW_ORDERS_PER_HOUR, o.log);
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#pass === null && !this.#closed) {
        this.#pass = this.pass().catch((e) => this.#o.log(`acme: ${errorText(e)}`))
          .finally(() => this.#pass = null);
      }
    }, this.#o.tickMs ?? ACME_TICK_MS);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#pass;
    this.#forget();
  }

  /** One pass (module comment); the timer runs it, tests call it. */
  async pass(): Promise<void> {
    const term = this.#o.leaderTerm();
    if (term === null) {
      this.#leadingTerm = null;
      return this.#forget();
    }
    if (this.#leadingTerm !== term) {
      this.#leadingTerm = term;
      this.#leadingSinceMs = this.#now();
    }
    const { store } = this.#o;
    const wanted = new Set(this.#o.names());
    const rows = new Map(store.acme.names().map((r) => [r.name, r]));
    // Nothing asked and nothing in flight: no lease taken, nothing written.
    if (wanted.size === 0 && rows.size === 0) return;
    if (this.#term !== term) {
      this.#forget();
      const r = await this.#o.propose({
        type: "acme.claim",
        term,
        node: this.#o.node,
        nowMs: this.#now(),
      });
      if (!r.result.ok) {
        this.#o.log(`acme: cannot claim the lease: ${r.result.error}`);
        return;
      }
      this.#term = term;
      this.#budget.seed(this.#o.store.acme.names(), this.#certs().byName.values(), this.#now());
    }
    const now = this.#now();
    for (const row of rows.values()) {
      if (!wanted.has(row.name)) {
        this.#o.log(`acme: ${row.name} is no longer routed by a service that asks; forgotten`);
        await this.#write(term, {
          type: "acme.name.drop",
          term,
          expectIndex: row.modifyIndex,
          name: row.name,
        });
      }
    }
    const { byName, manual } = this.#certs();
    const covered = manualNames(manual, now);
    const work: string[] = [];
    for (const name of wanted) {
      const row = rows.get(name);
      if (!due(name, row, byName.get(name), covered, now)) {
        if (row !== undefined && row.order === null) {
          await this.#write(term, {
            type: "acme.name.drop",
            term,
            expectIndex: row.modifyIndex,
            name,
          });
        }
        continue;
      }
      if (now < (row?.nextAttemptMs ?? 0) || now < (this.#poll.get(name)?.at ?? 0)) continue;
      work.push(name);
    }
    // Names that never failed (new ones, renewals) first, then by their next attempt.
    const key = (n: string) => rows.get(n)?.nextAttemptMs ?? 0;
    const failed = (n: string) => (rows.get(n)?.failures ?? 0) > 0 ? 1 : 0;
    work.sort((a, b) => failed(a) - failed(b) || key(a) - key(b));
    const step = work.slice(0, this.#o.concurrency ?? ACME_CONCURRENT_MAX)
      .filter((n) => {
        const row = rows.get(n);
        return (row !== undefined && !needsNewOrder(row, this.#o.directoryUrl, now)) ||
          this.#budget.take(now);
      });
    await Promise.all(step.map((n) => this.#advance(term, n)));
  }

  /** The edge certificates by name, and the manual ones: read again when edge_certs changed. */
  #certs(): { byName: ReadonlyMap<string, EdgeCert>; manual: readonly EdgeCert[] } {
    const index = this.#o.store.tableIndex("edge_certs");
    if (this.#certsSeen?.index !== index) {
      const all = this.#o.store.edgeCerts();
      this.#certsSeen = {
        index,
        byName: new Map(all.map((c) => [c.name, c])),
        manual: all.filter((c) => c.source === "manual"),
      };
    }
    return this.#certsSeen;
  }

  #leading(term: number): boolean {
    return !this.#closed && this.#term === term && this.#o.leaderTerm() === term;
  }

  #forget(): void {
    this.#term = null;
    this.#forgetApi();
    this.#poll.clear();
    this.#held.clear();
  }

  #forgetApi(): void {
    this.#api?.then((api) => api.close?.(), () => {});
    this.#api = null;
  }

  /** Proposes a leader write of `term`; false when refused or no longer leading. */
  async #write(term: number, cmd: Command): Promise<boolean> {
    if (!this.#leading(term)) return false;
    try {
      const r = await this.#o.propose(cmd);
      if (!r.result.ok && /does not hold the lease|no lease/.test(r.result.error ?? "")) {
        this.#forget();
      }
      return r.result.ok;
    } catch (e) {
      this.#o.log(`acme: ${errorText(e)}`);
      return false;
    }
  }

  /** One step of `name`'s order, and what it came to recorded. */
  async #advance(term: number, name: string): Promise<void> {
    const row = this.#o.store.acme.name(name);
    const state: AcmeNameSpec = row === undefined ? freshState(name) : spec(row);
    const expectIndex = row?.modifyIndex ?? 0;
    const now = this.#now();
    const holdAnswers = this.#holdAnswers(name, now);
    let outcome;
    try {
      const api = await this.#account(term);
      outcome = await stepOrder(state, {
        api,
        box: this.#o.box,
        directory: this.#o.directoryUrl,
        challengeType: this.#o.challengeType,
        nowMs: now,
        newKeyPem: this.#o.newKeyPem ?? newKeyPem,
        csr: this.#o.csr,
        holdAnswers,
      });
    } catch (e) {
      if (!this.#leading(term)) return;
      const facts = errorFacts(e);
      const gone = accountGone(facts);
      if (gone) {
        this.#reregister = true;
        this.#forgetApi();
      }
      // An order of an account the CA forgot cannot go on.
      const ends = e instanceof OrderFailed || facts.status === 404 || gone;
      const failures = state.failures + 1;
      const waitMs = backoffMs(
        failures,
        facts.retryAfterMs,
        e instanceof ValidationFailed ? VALIDATION_BACKOFF_MIN_MS : undefined,
      );
      const text = cleanText(`${name}: ${facts.text}`);
      this.#o.log(`acme: ${text}; next attempt in ${Math.round(waitMs / 1000)}s`);
      if (facts.type === "" && /account/i.test(facts.text)) this.#forgetApi();
      this.#poll.delete(name);
      await this.#write(term, {
        type: "acme.name.set",
        term,
        expectIndex,
        state: {
          ...state,
          order: ends ? null : state.order,
          // Not published through the backoff: recorded again when the order resumes.
          challenges: [],
          failures,
          nextAttemptMs: now + waitMs,
          lastError: text,
          lastErrorMs: now,
        },
      });
      return;
    }
    if (!this.#leading(term)) return;
    switch (outcome.kind) {
      case "wait": {
        // Held answers are looked at again soon: the hold ends with a member heard or marked down.
        const delayMs = holdAnswers !== null
          ? POLL_MIN_MS
          : nextPollMs(this.#poll.get(name)?.delayMs ?? 0, outcome.retryAfterMs ?? null);
        this.#poll.set(name, { at: now + delayMs, delayMs });
        return;
      }
      case "record":
        this.#poll.set(name, {
          at: now + nextPollMs(0, outcome.retryAfterMs ?? null),
          delayMs: 0,
        });
        await this.#write(term, { type: "acme.name.set", term, expectIndex, state: outcome.state });
        return;
      case "done": {
        this.#poll.delete(name);
        let cert: EdgeCert;
        try {
          cert = sealEdgeCert(this.#o.box, {
            name,
            certPem: outcome.certPem,
            keyPem: outcome.keyPem,
            source: "acme",
            isDefault: false,
            nowMs: now,
          });
        } catch (e) {
          this.#o.log(`acme: ${name}: the CA's certificate is refused: ${errorText(e)}`);
          await this.#write(term, {
            type: "acme.name.set",
            term,
            expectIndex,
            state: {
              ...state,
              order: null,
              challenges: [],
              failures: state.failures + 1,
              nextAttemptMs: now + backoffMs(state.failures + 1),
              lastError: cleanText(`${name}: the CA's certificate is refused: ${errorText(e)}`),
              lastErrorMs: now,
            },
          });
          return;
        }
        const ok = await this.#write(term, {
          type: "batch",
          commands: [
            { type: "cert.put", cert },
            { type: "acme.name.drop", term, expectIndex, name },
          ],
        });
        if (ok) {
          this.#o.log(
            `acme: certificate for ${name} from ${cert.issuer}, valid until ${
              new Date(cert.notAfter).toISOString()
            }`,
          );
        }
      }
    }
  }

  /**
   * Why `name`'s challenges wait now, or null: a new leader first hears from every member (its
   * view of who is silent needs EDGE_CONTACT_MAX_MS), then edgeSilence. Logged once per reason.
   */
  #holdAnswers(name: string, now: number): string | null {
    const reason = now - this.#leadingSinceMs < EDGE_CONTACT_MAX_MS
      ? "this leader is new"
      : this.#o.edgeSilence?.() ?? null;
    if (reason === null) this.#held.delete(name);
    else if (this.#held.get(name) !== reason) {
      this.#held.set(name, reason);
      if (reason !== "this leader is new") {
        this.#o.log(`acme: ${name}: the challenge waits: ${reason}`);
      }
    }
    return reason;
  }

  /** The client of this directory's account, made (key first, first wins) and registered once. */
  #account(term: number): Promise<AcmeApi> {
    this.#api ??= this.#makeAccount(term).catch((e) => {
      this.#api = null;
      throw e;
    });
    return this.#api;
  }

  async #makeAccount(term: number): Promise<AcmeApi> {
    const { store, box, directoryUrl: directory, email } = this.#o;
    const context = accountKeyContext(directory);
    if (store.acme.account(directory) === undefined) {
      const jwk = (this.#o.newAccountKey ?? newAccountKey)();
      const keySealed = box.seal(new TextEncoder().encode(JSON.stringify(jwk)), context);
      await this.#write(term, {
        type: "acme.account.create",
        term,
        account: { directory, email, keySealed, createdMs: this.#now() },
      });
    }
    const account = store.acme.account(directory);
    if (account === undefined) throw new Error(`no account key for ${directory} could be stored`);
    const accountKey = JSON.parse(new TextDecoder().decode(box.open(account.keySealed, context)));
    if (account.url !== null && !this.#reregister) {
      return this.#o.api({ directoryUrl: directory, accountKey, accountUrl: account.url });
    }
    // The same key again when the CA forgot the account: still one key, one account, cluster-wide.
    const { url } = await this.#o.api({ directoryUrl: directory, accountKey })
      .account(email === "" ? undefined : email);
    if (!await this.#write(term, { type: "acme.account.url", term, directory, url })) {
      throw new Error("the account URL could not be stored");
    }
    this.#o.log(
      account.url === null
        ? `acme: account ${url} at ${directory}`
        : `acme: the CA no longer knows account ${account.url}; its key registered again as ${url}`,
    );
    this.#reregister = false;
    return this.#o.api({ directoryUrl: directory, accountKey, accountUrl: url });
  }
}

/** Whether `name` needs a certificate now (module comment, point 3). */
function due(
  name: string,
  row: AcmeNameState | undefined,
  cert: EdgeCert | undefined,
  manual: ReadonlySet<string>,
  now: number,
): boolean {
  if (row?.renew === true) return true;
  if (cert?.source === "acme") {
    return now >= renewAt(cert.notBefore, cert.notAfter) || row?.order != null;
  }
  if (cert !== undefined) return false; // a manual certificate by that name
  const dot = name.indexOf(".");
  return !manual.has(name) && !manual.has(`*${name.slice(dot)}`);
}

/** The names (wildcards as `*.x`) that manual certificates valid at `now` cover. */
function manualNames(certs: readonly EdgeCert[], now: number): Set<string> {
  const out = new Set<string>();
  for (const c of certs) {
    if (c.source === "manual" && c.notAfter > now) { for (const n of c.names) out.add(n); }
  }
  return out;
}

function freshState(name: string): AcmeNameSpec {
  return {
    name,
    directory: "",
    order: null,
    challenges: [],
    failures: 0,
    nextAttemptMs: 0,
    lastError: "",
    lastErrorMs: 0,
    renew: false,
  };
}

function spec(row: AcmeNameState): AcmeNameSpec {
  const { createIndex: _c, modifyIndex: _m, ...s } = row;
  return s;
}

/** Error text as the store keeps it: one line, bounded. */
function cleanText(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, ACME_ERROR_CHARS_MAX);
}
