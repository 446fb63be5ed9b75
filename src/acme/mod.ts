/**
 * ACME for the cluster (README "ACME"): which names are ordered (names.ts), the leader's order
 * manager (manager.ts, order_step.ts, timing.ts) and every member's challenge answers
 * (answers.ts). The protocol client is client.ts; client_api.ts is what the manager needs of it.
 *
 * @module
 */
export { acmeNames, acmeNamesOf, type AcmeNamesOptions, isOrderableName } from "./names.ts";
export { AcmeManager, type AcmeManagerOptions } from "./manager.ts";
export { AcmeAnswers, type AcmeAnswersOptions, type AlpnCert } from "./answers.ts";
export type { AcmeApi, AcmeApiFactory } from "./client_api.ts";
export { backoffMs, renewAt } from "./timing.ts";
