/**
 * Serves the API app on `Deno.serve`. close() ends blocked reads at once, then waits for the
 * requests in flight.
 *
 * @module
 */
import type { HostPort } from "../lib/host_port.ts";
import { formatHostPort } from "../lib/host_port.ts";
import { type ApiOptions, createApp } from "./app.ts";
import { errorText } from "../lib/error_text.ts";

export class ApiServer {
  readonly #opts: ApiOptions & { listen: HostPort };
  readonly #abort = new AbortController();
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  #address: HostPort;

  constructor(opts: ApiOptions & { listen: HostPort }) {
    this.#opts = opts;
    this.#address = opts.listen;
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
    try {
      this.#server = Deno.serve({
        hostname: listen.host,
        port: listen.port,
        onListen: () => {},
      }, app.fetch);
    } catch (e) {
      const why = e instanceof Deno.errors.AddrInUse ? "address in use" : errorText(e);
      return Promise.reject(
        new Error(`api: cannot listen on ${formatHostPort(listen)} (${why})`),
      );
    }
    this.#address = { host: listen.host, port: this.#server.addr.port };
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.#abort.abort();
    const server = this.#server;
    this.#server = null;
    if (server !== null) await server.shutdown();
  }
}
