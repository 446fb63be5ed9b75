/**
 * The management token `--bootstrap` makes: a token bound to the built-in global-management
 * policy (Consul's "Bootstrap Token"), proposed with the cluster's first entries. Its secret is
 * shown once and written to `<data-dir>/management-token` (mode 0600) by the agent.
 *
 * @module
 */
import { type Command, GLOBAL_MANAGEMENT_ID } from "../store/mod.ts";
import { hashSecret } from "../pki/mod.ts";

/** The file `--bootstrap` writes the management token's secret to. */
export const MANAGEMENT_TOKEN_FILE = "management-token";

/** A new management token: its secret (a UUID, as Consul's) and the command that stores it. */
export function managementToken(nowMs: number): { secret: string; command: Command } {
  const secret = crypto.randomUUID();
  return {
    secret,
    command: {
      type: "acl.token.set",
      token: {
        accessorId: crypto.randomUUID(),
        secretHash: hashSecret(secret),
        description: "Bootstrap Token (Global Management)",
        policies: [{ id: GLOBAL_MANAGEMENT_ID }],
        local: false,
        createTimeMs: nowMs,
      },
    },
  };
}
