/**
 * The shape `/v1/berth/instances` answers with, which `berth service(s)` and the dashboard
 * show: the stored instance (its health sources `docker` and `checkResult` included) plus its
 * derived health, `status` and `output`, from the store's instanceHealth, node liveness included;
 * secret route settings in `meta` hidden (shownMeta).
 *
 * @module
 */
import type { CheckStatus, Instance, NodeHealthSource } from "../store/mod.ts";
import { instanceHealth, shownMeta } from "../store/mod.ts";

export interface InstanceView extends Instance {
  /** The instance's health: the worst of its sources; `passing` exactly when it is served. */
  status: CheckStatus;
  /** Why: the output of the source that decided `status` (empty when there is nothing to say). */
  output: string;
}

export function instanceView(i: Instance, nodeStatus: NodeHealthSource): InstanceView {
  const h = instanceHealth(i, nodeStatus);
  return { ...i, meta: shownMeta(i.meta), status: h.status, output: h.output };
}
