/**
 * The configurations `deno task bench https` runs its anchors with: a static nginx backend
 * (one per proxy measured), nginx terminating TLS and HAProxy terminating TLS, both with HTTP/2
 * and HTTP/1.1 by ALPN, TLS 1.2 and 1.3, one worker/thread each (berth's proxy runs on one
 * thread), a kept-alive HTTP/1.1 upstream pool and `X-Forwarded-Proto: https` as berth sends.
 *
 * @module
 */

/** The one body every backend answers with. */
export const BACKEND_BODY = "hello from the backend";

/** An nginx serving BACKEND_BODY on `host:port` (plain HTTP/1.1), files under `dir`. */
export function nginxBackendConfig(opts: { dir: string; host: string; port: number }): string {
  const { dir, host, port } = opts;
  return `
worker_processes 1;
pid ${dir}/backend-${port}.pid;
error_log ${dir}/backend-${port}.error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  keepalive_requests 1000000;
  server { listen ${host}:${port}; location / { return 200 "${BACKEND_BODY}\\n"; } }
}`;
}

export interface TlsProxyConfigOptions {
  dir: string;
  host: string;
  /** The TLS listener's port. */
  port: number;
  backendPort: number;
  /** Leaf certificate (PEM, chain) and its key (PEM). */
  crt: string;
  key: string;
}

/** nginx terminating TLS on `host:port` and proxying to the backend over kept-alive HTTP/1.1. */
export function nginxTlsConfig(opts: TlsProxyConfigOptions): string {
  const { dir, host, port, backendPort, crt, key } = opts;
  return `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  upstream backend { server ${host}:${backendPort}; keepalive 64; }
  server {
    listen ${host}:${port} ssl http2;
    ssl_certificate ${crt};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}`;
}

/** HAProxy terminating TLS on `host:port`; `pem` is the certificate followed by its key. */
export function haproxyTlsConfig(opts: TlsProxyConfigOptions & { pem: string }): string {
  const { host, port, backendPort, pem } = opts;
  return `
global
  nbthread 1
  maxconn 8192
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
frontend tls
  bind ${host}:${port} ssl crt ${pem} alpn h2,http/1.1
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  default_backend app
backend app
  http-reuse always
  server b1 ${host}:${backendPort}
`;
}
