/**
 * A small typed client of a berth agent's HTTP API, used by the `berth` command line. Failures
 * are one of two errors: ApiUnreachableError (nothing answered) or ApiHttpError (the agent
 * answered with an error status and a one-line reason).
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { putFile, type PutFileAnswer } from "./put_file.ts";
import type { ClusterStatus, MemberStatus } from "../cluster/mod.ts";
import type { JoinTokenInfo, KvEntry } from "../store/mod.ts";
import type { InstanceView } from "./instance_view.ts";
import type { AcmeCertView, AcmeNameView } from "./acme_routes.ts";
import type { CertView } from "./certs.ts";

/** GET /v1/berth/acme. */
export interface AcmeView {
  accounts: { directory: string; url: string | null; email: string; createdMs: number }[];
  lease: { term: number; node: string; sinceMs: number } | null;
  names: AcmeNameView[];
  certificates: AcmeCertView[];
}

/** How long one request may take before the client gives up. */
export const CLIENT_TIMEOUT_MS = 30_000;
/** How long a snapshot save or restore may stream. */
export const SNAPSHOT_TIMEOUT_MS = 30 * 60_000;
/** The agent's address when none is configured. */
export const DEFAULT_HTTP_ADDR = "http://127.0.0.1:8500";

export class ApiUnreachableError extends Error {
  override name = "ApiUnreachableError";
  readonly baseUrl: string;
  readonly reason: string;
  /** Whether TLS failed (untrusted certificate, wrong scheme): the agent may well be running. */
  readonly tls: boolean;

  constructor(baseUrl: string, reason: string, tls = false) {
    super(`cannot reach the agent at ${baseUrl} (${reason})`);
    this.baseUrl = baseUrl;
    this.reason = reason;
    this.tls = tls;
  }
}

export class ApiHttpError extends Error {
  override name = "ApiHttpError";
  readonly status: number;
  readonly path: string;

  constructor(status: number, path: string, text: string) {
    super(text === "" ? `HTTP ${status}` : text);
    this.status = status;
    this.path = path;
  }
}

export interface ApiClientOptions {
  token?: string | null;
  /**
   * PEM certificates (the cluster CA's, from BERTH_CACERT) that an https agent's certificate
   * must chain to, instead of the system's roots.
   */
  caCertPem?: string | null;
  /** Per-request limit (default CLIENT_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** A KV entry with its value decoded to bytes: the store's entry, as the API returns it. */
export type KvItem = KvEntry;

interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: Uint8Array | string | ReadableStream<Uint8Array>;
  /** Overrides the client's per-request limit (a snapshot stream takes longer). */
  timeoutMs?: number;
  /** Statuses answered with `null` instead of an error (404 for a missing key). */
  allow?: number[];
  /** Aborts the request (it then fails as unreachable, "aborted"). */
  signal?: AbortSignal;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** The TLS failure in a fetch error's text, as one line naming the fix; null when none. */
export function tlsReason(text: string): string | null {
  const name = /certificate not valid for name ("[^"]*")/.exec(text);
  if (name !== null) {
    return `the agent's TLS certificate is not valid for ${name[1]}; use a name or address ` +
      `it names`;
  }
  // node:https (put_file.ts) words them as OpenSSL does.
  const altName =
    /Hostname\/IP does not match certificate's altnames: (?:Host|IP): ([^.\s]+(?:\.[^.\s]+)*)\./
      .exec(text);
  if (altName !== null) {
    return `the agent's TLS certificate is not valid for "${altName[1]}"; use a name or ` +
      `address it names`;
  }
  const peer = /invalid peer certificate: (\w+)/.exec(text) ??
    (/unable to verify the first certificate|unable to get local issuer certificate|self[- ]signed certificate/
        .test(text)
      ? [text, "UnknownIssuer"]
      : null);
  if (peer !== null) {
    const why = peer[1] === "UnknownIssuer" ? "signed by an unknown CA" : peer[1];
    return `the agent's TLS certificate is not trusted (${why}); set BERTH_CACERT to the ` +
      `ca.crt in an agent's data dir`;
  }
  if (/invalid HTTP version parsed|Parse Error: Expected HTTP\//.test(text)) {
    return "the agent did not answer in plain HTTP; use an https:// address";
  }
  if (/corrupt message of type InvalidContentType/.test(text)) {
    return "the agent did not answer in TLS; use an http:// address";
  }
  return null;
}

function reasonOf(e: unknown): string {
  // Deno's fetch says "fetch failed"; the cause carries the connect error.
  const cause = (e as { cause?: unknown })?.cause;
  const text = `${errorText(e)}${cause === undefined ? "" : `: ${errorText(cause)}`}`;
  const tls = tlsReason(text);
  if (tls !== null) return tls;
  if (/refused/i.test(text)) return "connection refused";
  if (/timed? ?out|TimeoutError/i.test(text) || (e as Error)?.name === "TimeoutError") {
    return "timed out";
  }
  if (/dns error|failed to lookup|Name or service not known/i.test(text)) {
    return "unknown host";
  }
  return (cause === undefined ? text : errorText(cause)).slice(0, 200);
}

/** The header carrying a snapshot passphrase (api/snapshot_secrets.ts), when there is one. */
function passphraseHeader(passphrase: string | undefined): Record<string, string> {
  return passphrase === undefined ? {} : { "X-Berth-Snapshot-Passphrase": passphrase };
}

/** `a/b c` → `a/b%20c`: each segment encoded, slashes kept. */
function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

export class ApiClient {
  readonly baseUrl: string;
  readonly #token: string | null;
  readonly #timeoutMs: number;
  readonly #http: Deno.HttpClient | undefined;
  readonly #caCertPem: string | undefined;

  /** Throws one line when `opts.caCertPem` holds no certificate. */
  constructor(baseUrl: string, opts: ApiClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = opts.token ?? null;
    this.#timeoutMs = opts.timeoutMs ?? CLIENT_TIMEOUT_MS;
    this.#caCertPem = opts.caCertPem ?? undefined;
    this.#http = opts.caCertPem == null
      ? undefined
      : Deno.createHttpClient({ caCerts: [opts.caCertPem] });
  }

  /** Frees the connection pool of a client made with `caCertPem`. */
  close(): void {
    this.#http?.close();
  }

  /** One request; the response on success (or on an allowed status), else a thrown error. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response | null> {
    const r = await this.send(method, path, opts);
    if (r.ok) return r;
    const text = (await r.text()).trim().split("\n")[0] ?? "";
    if (opts.allow?.includes(r.status)) return null;
    throw new ApiHttpError(r.status, path, text);
  }

  /** One request; the response whatever its status. Throws ApiUnreachableError only. */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined || v === false) continue;
      url.searchParams.set(k, v === true ? "" : String(v));
    }
    const headers: Record<string, string> = { ...opts.headers };
    if (this.#token !== null) headers["X-Consul-Token"] = this.#token;
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.#timeoutMs);
    let r: Response;
    try {
      const init: RequestInit & { client?: Deno.HttpClient } = {
        method,
        headers,
        body: opts.body as BodyInit | undefined,
        signal: opts.signal === undefined ? timeout : AbortSignal.any([timeout, opts.signal]),
        client: this.#http,
      };
      r = await fetch(url, init);
    } catch (e) {
      const reason = reasonOf(e);
      throw new ApiUnreachableError(this.baseUrl, reason, reason.startsWith("the agent"));
    }
    return r;
  }

  async #json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T | null> {
    const r = await this.request(method, path, opts);
    return r === null ? null : await r.json() as T;
  }

  async status(): Promise<ClusterStatus> {
    return (await this.#json<ClusterStatus>("GET", "/v1/berth/status"))!;
  }

  async members(): Promise<MemberStatus[]> {
    return (await this.#json<MemberStatus[]>("GET", "/v1/berth/members"))!;
  }

  async raftPeers(): Promise<MemberStatus[]> {
    return (await this.#json<MemberStatus[]>("GET", "/v1/berth/raft/peers"))!;
  }

  /** Service names with their tags. */
  async services(): Promise<Record<string, string[]>> {
    return (await this.#json<Record<string, string[]>>("GET", "/v1/catalog/services"))!;
  }

  /** Every instance, or those of one service. */
  async instances(service?: string): Promise<InstanceView[]> {
    return (await this.#json<InstanceView[]>("GET", "/v1/berth/instances", {
      query: { service },
    }))!;
  }

  /** The entry at `key` (or every entry under it with `recurse`); empty when none. */
  async kvGet(key: string, opts: { recurse?: boolean } = {}): Promise<KvItem[]> {
    type Raw = {
      Key: string;
      Value: string | null;
      Flags: number;
      CreateIndex: number;
      ModifyIndex: number;
      LockIndex: number;
    };
    const list = await this.#json<Raw[]>("GET", `/v1/kv/${encodeKey(key)}`, {
      query: { recurse: opts.recurse },
      allow: [404],
    });
    return (list ?? []).map((e) => ({
      key: e.Key,
      value: e.Value === null
        ? new Uint8Array(0)
        : Uint8Array.from(atob(e.Value), (ch) => ch.charCodeAt(0)),
      flags: e.Flags,
      createIndex: e.CreateIndex,
      modifyIndex: e.ModifyIndex,
      lockIndex: e.LockIndex,
    }));
  }

  /** Keys under `prefix`, folded at `separator` when given. */
  async kvKeys(prefix: string, separator?: string): Promise<string[]> {
    return await this.#json<string[]>("GET", `/v1/kv/${encodeKey(prefix)}`, {
      query: { keys: true, separator },
      allow: [404],
    }) ?? [];
  }

  /** Stores a value; false when `cas` did not match. */
  async kvPut(
    key: string,
    value: Uint8Array | string,
    opts: { cas?: number; flags?: number } = {},
  ): Promise<boolean> {
    return (await this.#json<boolean>("PUT", `/v1/kv/${encodeKey(key)}`, {
      query: { cas: opts.cas, flags: opts.flags },
      body: value,
    }))!;
  }

  /** Deletes a key (or a prefix with `recurse`); false when `cas` did not match. */
  async kvDelete(key: string, opts: { cas?: number; recurse?: boolean } = {}): Promise<boolean> {
    return (await this.#json<boolean>("DELETE", `/v1/kv/${encodeKey(key)}`, {
      query: { cas: opts.cas, recurse: opts.recurse },
    }))!;
  }

  async join(address: string): Promise<void> {
    await this.request("PUT", `/v1/agent/join/${encodeURIComponent(address)}`);
  }

  async leave(): Promise<void> {
    await this.request("PUT", "/v1/agent/leave");
  }

  async transferLeader(to?: string): Promise<void> {
    await this.request("POST", "/v1/berth/raft/transfer-leader", { query: { to } });
  }

  /** Makes a join token; the answer holds its one-line form (shown this once). */
  async tokenCreate(
    body: { ttl?: string; uses?: number; description?: string },
  ): Promise<JoinTokenInfo & { token: string }> {
    return (await this.#json<JoinTokenInfo & { token: string }>("POST", "/v1/berth/tokens", {
      body: JSON.stringify(body),
    }))!;
  }

  async tokens(): Promise<JoinTokenInfo[]> {
    return (await this.#json<JoinTokenInfo[]>("GET", "/v1/berth/tokens"))!;
  }

  /** ACME: accounts, the ordering lease and the names being ordered (acme_routes.ts). */
  async acme(): Promise<AcmeView> {
    return (await this.#json<AcmeView>("GET", "/v1/berth/acme"))!;
  }

  /** Asks for a new ACME certificate for `name` now. */
  async acmeRenew(name: string): Promise<void> {
    await this.request("POST", `/v1/berth/acme/renew/${encodeURIComponent(name)}`);
  }

  /** HTTPS certificates (certs.ts), never a key. */
  async certs(): Promise<CertView[]> {
    return (await this.#json<CertView[]>("GET", "/v1/berth/certs"))!;
  }

  /** Adds or replaces certificate `name` (its key is sealed by the agent before it is stored). */
  async certPut(
    name: string,
    body: { certPem: string; keyPem: string; default?: boolean },
  ): Promise<CertView> {
    return (await this.#json<CertView>("PUT", `/v1/berth/certs/${encodeURIComponent(name)}`, {
      body: JSON.stringify(body),
    }))!;
  }

  async certRemove(name: string): Promise<void> {
    await this.request("DELETE", `/v1/berth/certs/${encodeURIComponent(name)}`);
  }

  async tokenRevoke(id: string): Promise<void> {
    await this.request("DELETE", `/v1/berth/tokens/${encodeURIComponent(id)}`);
  }

  async removePeer(node: string): Promise<void> {
    await this.request("DELETE", `/v1/berth/raft/peers/${encodeURIComponent(node)}`);
  }

  /**
   * Streams the agent's user snapshot into the file at `path` (written beside it, then renamed,
   * so a failed save leaves no partial file); resolves with its size.
   */
  async snapshotSave(path: string, opts: { passphrase?: string } = {}): Promise<number> {
    const r = (await this.request("GET", "/v1/snapshot", {
      timeoutMs: SNAPSHOT_TIMEOUT_MS,
      query: { "include-secrets": opts.passphrase !== undefined ? "true" : undefined },
      headers: passphraseHeader(opts.passphrase),
    }))!;
    const tmp = `${path}.partial`;
    let bytes = 0;
    try {
      // Owner-only: a snapshot holds every KV value, and with secrets their sealed section.
      const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
      await Deno.chmod(tmp, 0o600);
      const counted = r.body!.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(piece, k) {
            bytes += piece.byteLength;
            k.enqueue(piece);
          },
        }),
      );
      await counted.pipeTo(file.writable);
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
    return bytes;
  }

  /**
   * Streams the snapshot file at `path` to the agent, which replicates it in chunks; with
   * `passphrase` its sealed ACL policies and tokens are restored too. Resolves with what became
   * of its secrets: `restored`, `kept` (sealed, no passphrase) or `none` (it holds none).
   */
  async snapshotRestore(
    path: string,
    opts: { passphrase?: string } = {},
  ): Promise<"restored" | "kept" | "none"> {
    const p = "/v1/snapshot";
    const headers: Record<string, string> = { ...passphraseHeader(opts.passphrase) };
    if (this.#token !== null) headers["X-Consul-Token"] = this.#token;
    let r: PutFileAnswer;
    try {
      // Sent with its length, not chunked as fetch would (put_file.ts: the agent's memory).
      r = await putFile(new URL(this.baseUrl + p), path, {
        headers,
        caCertPem: this.#caCertPem,
        signal: AbortSignal.timeout(SNAPSHOT_TIMEOUT_MS),
      });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw e;
      const reason = reasonOf(e);
      throw new ApiUnreachableError(this.baseUrl, reason, reason.startsWith("the agent"));
    }
    if (r.status < 200 || r.status > 299) {
      throw new ApiHttpError(r.status, p, r.text.trim().split("\n")[0] ?? "");
    }
    const secrets = r.headers["x-berth-snapshot-secrets"];
    return secrets === "restored" || secrets === "kept" ? secrets : "none";
  }
}
