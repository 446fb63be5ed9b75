#!/usr/bin/env bash
# Builds the single berth binary with `deno compile`. deno compile downloads its runtime (denort)
# unless DENORT_BIN points at one already on disk. Targets: x86_64 and aarch64 Linux
# (TARGETS="x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu"; default: this machine's).
# The binary gets the same permission flags the tests pass to `deno run` (see PERMISSIONS).
set -euo pipefail
cd "$(dirname "$0")/.."
# --allow-all includes --allow-ffi, which the DNS fast path (src/lib/ffi_udp.ts) needs.
PERMISSIONS=(--allow-all)
# Workers' main modules, which the module graph from src/main.ts does not name statically.
INCLUDES=(--include src/store/snapshot_worker.ts --include src/cluster/log_worker.ts
  --include src/dns/workers/dns_worker.ts --include src/proxy/workers/proxy_worker.ts
  --include src/proxy/middleware/bcrypt_worker.ts)
mkdir -p dist
targets=${TARGETS:-}
if [ -z "$targets" ]; then
  deno compile "${PERMISSIONS[@]}" "${INCLUDES[@]}" --output dist/berth src/main.ts
else
  for t in $targets; do
    deno compile "${PERMISSIONS[@]}" "${INCLUDES[@]}" --target "$t" --output "dist/berth-$t" src/main.ts
  done
fi
ls -l dist/
