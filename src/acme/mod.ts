/**
 * ACME for the cluster (README "ACME"): which names are ordered (names.ts), the leader's order
 * manager (manager.ts, order_step.ts, timing.ts) and every member's challenge answers
 * (answers.ts). The protocol client is client.ts; client_api.ts is what the manager needs of it.
 *
 * The protocol client, one file per concern:
 *
 * | file        | what                                                                            |
 * |-------------|---------------------------------------------------------------------------------|
 * | `client.ts` | `AcmeClient`: directory, account, order, authorization, challenge, finalize, download, polling |
 * | `jws.ts`    | base64url, account key as JWK, RFC 7638 thumbprint, ES256 flattened JWS          |
 * | `wire.ts`   | the CA's JSON objects, checked and bounded; Retry-After                         |
 * | `error.ts`  | `AcmeError` (problem documents and berth's own failure types)                   |
 * | `_http.ts`  | requests with a timeout, bounded answers, nonces collected                      |
 * | `client_hello.ts` | reading a TLS ClientHello (server name, ALPN, key shares)                 |
 * | `tls_alpn_responder.ts` | `answerTlsAlpn01`: berth's own TLS 1.3 handshake for `acme-tls/1`   |
 * | `tls_alpn_hook.ts` | `tlsAlpnHook`: the proxy's hook that sends acme-tls/1 hellos to it      |
 *
 * The CSR and the TLS-ALPN-01 challenge certificate are built in src/pki (acme_certs.ts) and
 * re-exported by client.ts as `csr` and `tlsAlpnChallengeCert`.
 *
 * @module
 */
export {
  acmeNames,
  acmeNamesIn,
  acmeNamesOf,
  type AcmeNamesOptions,
  isOrderableName,
} from "./names.ts";
export { AcmeManager, type AcmeManagerOptions } from "./manager.ts";
export {
  AcmeAnswers,
  type AcmeAnswersOptions,
  type AlpnCert,
  type ChallengeSource,
} from "./answers.ts";
export { tlsAlpnHook } from "./tls_alpn_hook.ts";
export type { AcmeApi, AcmeApiFactory } from "./client_api.ts";
export { backoffMs, renewAt } from "./timing.ts";
export { EDGE_CONTACT_MAX_MS, silentEdgeMember } from "./edge_contact.ts";
export {
  AcmeClient,
  type AcmeClientOptions,
  ANSWER_BYTES_MAX,
  csr,
  type PollOptions,
  tlsAlpnChallengeCert,
} from "./client.ts";
export { AcmeError, type AcmeErrorInit, type AcmeSubproblem, PROBLEM } from "./error.ts";
export {
  ACME_TLS_ALPN,
  type AlpnCertLookup,
  type AnswerOptions,
  answerTlsAlpn01,
} from "./tls_alpn_responder.ts";
export { type ClientHello, type HelloRead, readClientHello } from "./client_hello.ts";
export { generateAccountKey, jwkThumbprint, loadAccountKey, publicJwk } from "./jws.ts";
export type {
  Account,
  Authorization,
  AuthorizationStatus,
  Challenge,
  ChallengeStatus,
  Directory,
  Order,
  OrderStatus,
} from "./wire.ts";
