#!/usr/bin/env bash
# Makes a Docker engine available on this machine, idempotently:
#   1. installs docker.io with apt-get when `dockerd` is missing;
#   2. when `docker info` fails, starts `dockerd` in the background (log: /tmp/dockerd.log),
#      first with default flags, then, if it dies on iptables/bridge setup (restricted
#      sandboxes), with --iptables=false, then with --iptables=false --bridge=none;
#   3. waits (bounded) until `docker info` answers; exits non-zero with one clear line otherwise.
# Published ports on 127.0.0.1 work with the default flags and with --iptables=false (the
# userland docker-proxy forwards them); --bridge=none leaves only host networking.
#
#   scripts/docker-up.sh && docker run -d -p 127.0.0.1::80 berth-test
set -euo pipefail

LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
WAIT_S="${DOCKER_UP_WAIT_S:-60}"

say() { echo "docker-up: $*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
  say "dockerd missing; installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker.io >/dev/null
fi

if docker info >/dev/null 2>&1; then
  say "engine already running"
  exit 0
fi

# wait_for PID SECONDS: 0 once `docker info` answers, 1 if dockerd exits, 2 on timeout.
wait_for() {
  local pid="$1" deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    if docker info >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
  return 2
}

try_start() {
  # A stale pid file from a crashed engine stops dockerd from starting.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  say "starting dockerd ${*:-(default flags)} (log: $LOG)"
  {
    echo "=== $(date -u +%FT%TZ) dockerd $*"
  } >>"$LOG"
  nohup dockerd "$@" >>"$LOG" 2>&1 </dev/null &
  local pid=$! rc=0
  wait_for "$pid" "$WAIT_S" || rc=$?
  if [ "$rc" = 0 ]; then
    say "engine up (dockerd ${*:-(default flags)}, pid $pid)"
    return 0
  fi
  if [ "$rc" = 2 ]; then
    say "dockerd $* did not answer within ${WAIT_S}s; see $LOG"
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  return 1
}

try_start && exit 0
if tail -n 40 "$LOG" | grep -qiE 'iptables|bridge|nat|netfilter|docker0'; then
  try_start --iptables=false && exit 0
  try_start --iptables=false --bridge=none && exit 0
fi
say "dockerd failed to start; last lines of $LOG:"
tail -n 5 "$LOG" >&2
exit 1
