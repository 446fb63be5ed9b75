/**
 * The plain-HTTP anchors of `deno task bench http`: nginx and HAProxy proxying to a static nginx
 * backend of their own (scripts/bench/_tls_anchors.ts's nginxBackendConfig) over kept-alive
 * HTTP/1.1, each with a given number of workers/threads, forwarding Host and X-Forwarded-For as
 * berth does.
 *
 * @module
 */

export interface HttpProxyConfigOptions {
  dir: string;
  host: string;
  port: number;
  backendPort: number;
  /** nginx `worker_processes` / HAProxy `nbthread`: a count, or "auto" (nginx: one per core). */
  workers: number | "auto";
  /** nginx only: directives added to the `http` block and to the proxied `location`. */
  extra?: { http?: string; location?: string };
}

/** nginx on `host:port` proxying to the backend (pid and logs named after `port` in `dir`). */
export function nginxProxyConfig(o: HttpProxyConfigOptions): string {
  return `
worker_processes ${o.workers};
pid ${o.dir}/nginx-${o.port}.pid;
error_log ${o.dir}/nginx-${o.port}.error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${o.dir}; proxy_temp_path ${o.dir}; fastcgi_temp_path ${o.dir};
  uwsgi_temp_path ${o.dir}; scgi_temp_path ${o.dir};
  keepalive_requests 1000000;${indented(o.extra?.http, 2)}
  upstream backend { server ${o.host}:${o.backendPort}; keepalive 64; }
  server {
    listen ${o.host}:${o.port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;${indented(o.extra?.location, 6)}
    }
  }
}`;
}

/** `text`'s lines, each on a line of its own indented by `n` spaces; "" for none. */
function indented(text: string | undefined, n: number): string {
  if (text === undefined || text.trim() === "") return "";
  return text.trim().split("\n").map((l) => `\n${" ".repeat(n)}${l.trim()}`).join("");
}

/** HAProxy on `host:port` proxying to the backend; `workers` "auto" is HAProxy's own default. */
export function haproxyHttpConfig(o: HttpProxyConfigOptions): string {
  return `
global
${o.workers === "auto" ? "" : `  nbthread ${o.workers}\n`}  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
frontend web
  bind ${o.host}:${o.port}
  option forwardfor
  default_backend app
backend app
  http-reuse always
  server b1 ${o.host}:${o.backendPort}
`;
}
