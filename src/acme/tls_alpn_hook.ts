/**
 * The proxy's TLS-ALPN-01 hook (`ProxyTlsOptions.acmeTlsAlpn`, src/proxy/https_listener.ts):
 * while a challenge is pending, a connection whose ClientHello offers `acme-tls/1` for a name
 * under validation is answered by berth's own handshake (tls_alpn_responder.ts), since Deno's
 * TLS refuses the challenge certificate.
 *
 * @module
 */
import type net from "node:net";
import type { AcmeAnswers } from "./answers.ts";
import { readClientHello } from "./client_hello.ts";
import { ACME_TLS_ALPN, answerTlsAlpn01 } from "./tls_alpn_responder.ts";

/** The hook over the member's challenge answers; `log` gets a line per refused validation. */
export function tlsAlpnHook(answers: AcmeAnswers, log: (line: string) => void): {
  pending(): boolean;
  claims(head: Uint8Array): boolean | "more";
  answer(socket: net.Socket, head: Uint8Array): void;
} {
  return {
    pending: () => answers.tlsAlpnPending(),
    claims(head) {
      const r = readClientHello(head);
      if (r.kind === "more") return "more";
      if (r.kind !== "hello") return false;
      const { alpn, servername } = r.hello;
      return alpn.includes(ACME_TLS_ALPN) && servername !== null &&
        answers.tlsAlpn(servername) !== null;
    },
    answer(socket, head) {
      void answerTlsAlpn01(socket, (name) => answers.tlsAlpn(name), { head }).then((r) => {
        if (r !== "answered") log(`acme: a TLS-ALPN-01 validation was not answered: ${r}`);
      });
    },
  };
}
