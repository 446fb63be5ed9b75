/**
 * The nginx configuration both HTTP benchmarks use: a static backend answering
 * "hello from the backend", and an nginx proxy in front of it with a keep-alive upstream pool.
 *
 * @module
 */
export function nginxBenchConfig(
  opts: { dir: string; host: string; backendPort: number; proxyPort: number },
): string {
  const { dir, host, backendPort, proxyPort } = opts;
  return `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream backend { server ${host}:${backendPort}; keepalive 64; }
  server { listen ${host}:${backendPort}; location / { return 200 "hello from the backend\\n"; } }
  server {
    listen ${host}:${proxyPort};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}`;
}
