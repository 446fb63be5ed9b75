import assert from "node:assert/strict";
import {
  encodeGrpcMessage,
  grpcStatusFor,
  hasGrpcContentType,
  hasGrpcStatus,
  splitTrailersOnly,
  wantsGrpcErrors,
} from "./grpc_status.ts";
import type { ServiceRoute } from "./routes.ts";

Deno.test("hasGrpcContentType() matches application/grpc and its +suffix forms, any case", () => {
  assert.equal(hasGrpcContentType(["Content-Type", "application/grpc"]), true);
  assert.equal(hasGrpcContentType(["content-type", "Application/GRPC+proto"]), true);
  assert.equal(hasGrpcContentType(["x", "y", "content-type", "application/grpc-web"]), true);
  assert.equal(hasGrpcContentType(["content-type", "application/json"]), false);
  assert.equal(hasGrpcContentType(["x-content-type", "application/grpc"]), false);
  assert.equal(hasGrpcContentType([]), false);
});

Deno.test("wantsGrpcErrors() is true for grpc routes whatever the request, else by content type", () => {
  const route = (proto: ServiceRoute["proto"]) => ({ proto }) as ServiceRoute;
  assert.equal(wantsGrpcErrors(route("grpc"), []), true);
  assert.equal(wantsGrpcErrors(route("h2c"), []), false);
  assert.equal(wantsGrpcErrors(route("http1"), ["content-type", "application/grpc"]), true);
});

Deno.test("encodeGrpcMessage() percent-encodes %, controls and non-ASCII as UTF-8", () => {
  assert.equal(encodeGrpcMessage("no instance: 100% down"), "no instance: 100%25 down");
  assert.equal(encodeGrpcMessage("a\nb"), "a%0Ab");
  assert.equal(encodeGrpcMessage("é"), "%C3%A9");
  assert.equal(decodeURIComponent(encodeGrpcMessage("x é % \t")), "x é % \t");
});

Deno.test("grpcStatusFor() maps 502/503 to UNAVAILABLE, 504 to DEADLINE_EXCEEDED, 404 to UNIMPLEMENTED", () => {
  assert.deepEqual([502, 503, 504, 404, 400].map(grpcStatusFor), [14, 14, 4, 12, 13]);
});

Deno.test("splitTrailersOnly() keeps the content type in the headers and moves the rest", () => {
  const fields = [
    "content-type",
    "application/grpc",
    "grpc-status",
    "7",
    "x-meta",
    "a",
    "date",
    "d",
  ];
  assert.equal(hasGrpcStatus(fields), true);
  assert.equal(hasGrpcStatus(["content-type", "application/grpc"]), false);
  assert.deepEqual(splitTrailersOnly(fields), {
    headers: ["content-type", "application/grpc"],
    trailers: ["grpc-status", "7", "x-meta", "a", "date", "d"],
  });
});
