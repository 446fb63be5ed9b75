/**
 * Serves the API app on `Deno.serve`, over TLS when given a certificate and key (README,
 * "Security"). close() ends blocked reads at once, then waits for the requests in flight.
 *
 * A renewed certificate (`--http-tls auto`) is swapped in by `setTls()`: `Deno.serve` keeps its
 * certificate for its life, so the listener is closed and opened again on the same port with the
 * new one; requests in flight finish on the old listener.
 *
 * @module
 */
import type { HostPort } from "../lib/host_port.ts";
import { formatHostPort } from "../lib/host_port.ts";
import { type ApiOptions, createApp } from "./app.ts";
import { errorText } from "../lib/error_text.ts";
import type { TlsMaterial } from "./tls_files.ts";

/** How long setTls() tries to open the listener again while the old one lets go of the port. */
const REBIND_MS_MAX = 5_000;

export interface ApiServerOptions extends ApiOptions {
  listen: HostPort;
  /** Serve https with this certificate and key (already checked: tls_files.ts); else http. */
  tls?: TlsMaterial | null;
}

export class ApiServer {
  readonly #opts: ApiServerOptions;
  readonly #abort = new AbortController();
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  #handler: ((r: Request) => Response | Promise<Response>) | null = null;
  #tls: TlsMaterial | null;
  /** Listeners replaced by setTls(), finishing their requests. */
  readonly #draining = new Set<Promise<void>>();
  #address: HostPort;

  constructor(opts: ApiServerOptions) {
    this.#opts = opts;
    this.#address = opts.listen;
    this.#tls = opts.tls ?? null;
  }

  /** `https` when serving TLS, else `http`. */
  get scheme(): "http" | "https" {
    return this.#tls === null ? "http" : "https";
  }

  /** Where the server listens; the real port once started with port 0. */
  get address(): HostPort {
    return this.#address;
  }

  /** Starts listening; rejects with one line when the address cannot be bound. */
  start(): Promise<void> {
    if (this.#server !== null) return Promise.resolve();
    const { listen } = this.#opts;
    const signal = this.#opts.signal;
    if (signal !== undefined) {
      signal.addEventListener("abort", () => this.#abort.abort(), { once: true });
    }
    const app = createApp({ ...this.#opts, signal: this.#abort.signal });
    this.#handler = app.fetch;
    try {
      this.#server = this.#serve(listen);
    } catch (e) {
      const why = e instanceof Deno.errors.AddrInUse ? "address in use" : errorText(e);
      return Promise.reject(
        new Error(`api: cannot listen on ${formatHostPort(listen)} (${why})`),
      );
    }
    this.#address = { host: listen.host, port: this.#server.addr.port };
    return Promise.resolve();
  }

  /**
   * Serves `tls` from now on (see the module comment); resolves once the new listener is up.
   * Not started or closed: only remembered for start().
   */
  async setTls(tls: TlsMaterial): Promise<void> {
    this.#tls = tls;
    const old = this.#server;
    if (old === null) return;
    // Blocked reads on the old listener may last minutes: it drains in the background (close()
    // ends them and waits).
    const closing = old.shutdown().catch(() => {}).finally(() => this.#draining.delete(closing));
    this.#draining.add(closing);
    const deadline = Date.now() + REBIND_MS_MAX;
    for (;;) {
      if (this.#abort.signal.aborted) return;
      try {
        this.#server = this.#serve(this.#address);
        break;
      } catch (e) {
        if (!(e instanceof Deno.errors.AddrInUse) || Date.now() > deadline) {
          this.#server = null;
          throw new Error(
            `api: cannot listen again on ${formatHostPort(this.#address)} (${errorText(e)})`,
          );
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  #serve(at: HostPort): Deno.HttpServer<Deno.NetAddr> {
    const tls = this.#tls === null ? {} : { cert: this.#tls.certPem, key: this.#tls.keyPem };
    return Deno.serve(
      { hostname: at.host, port: at.port, onListen: () => {}, ...tls },
      this.#handler!,
    );
  }

  async close(): Promise<void> {
    this.#abort.abort();
    const server = this.#server;
    this.#server = null;
    if (server !== null) await server.shutdown();
    await Promise.all(this.#draining);
  }
}
