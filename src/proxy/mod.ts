/**
 * The HTTP load balancer (work in progress: route table and balancers).
 *
 * @module
 */
export { Balancer, type LbPolicy, parseLbPolicy, type Target } from "./balancer.ts";
export {
  buildRouteTable,
  RouteTable,
  type RouteTableOptions,
  type ServiceRoute,
} from "./routes.ts";
