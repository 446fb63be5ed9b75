#!/usr/bin/env bash
# Builds the berth-test:latest image from Debian's busybox-static, without any image registry:
# a rootfs with /bin/busybox, applet links (sh, httpd, nc, wget, ...), and /www/index.html,
# imported with `docker import`. Default command: `httpd -f -p 80 -h /www`, EXPOSE 80.
#
#   scripts/test-image.sh            # build unless the image exists
#   scripts/test-image.sh --force    # rebuild
#
# Works with a HEALTHCHECK given at run time, e.g.
#   docker run -d -p 127.0.0.1::80 --health-cmd 'wget -q -O /dev/null http://127.0.0.1/' \
#     --health-interval 1s berth-test
set -euo pipefail

IMAGE="${BERTH_TEST_IMAGE:-berth-test:latest}"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,12p' "$0"
      exit 0
      ;;
    *)
      echo "test-image.sh: unknown argument $arg (expected --force)" >&2
      exit 2
      ;;
  esac
done

if ! docker info >/dev/null 2>&1; then
  echo "test-image.sh: no Docker engine answers; run scripts/docker-up.sh first" >&2
  exit 1
fi

if [ "$force" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "test-image.sh: $IMAGE exists (use --force to rebuild)"
  exit 0
fi

busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
  if [ -x "$candidate" ] && file -L "$candidate" 2>/dev/null | grep -q "statically linked"; then
    busybox="$candidate"
    break
  fi
done
if [ -z "$busybox" ] && ! command -v file >/dev/null 2>&1 && [ -x /bin/busybox ]; then
  busybox=/bin/busybox # no `file` to check with; Debian's busybox-static installs here
fi
if [ -z "$busybox" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "test-image.sh: installing busybox-static" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >/dev/null
    busybox=/bin/busybox
  else
    echo "test-image.sh: need a statically linked busybox (apt-get install busybox-static)" >&2
    exit 1
  fi
fi

root="$(mktemp -d /tmp/berth-test-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,www,tmp,etc,proc,sys,dev,var/run}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
# One link per applet, in the directory busybox itself names (bin/sh, sbin/ifconfig, ...).
"$busybox" --list-full | while read -r applet; do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
[ -e "$root/bin/sh" ] || ln -s /bin/busybox "$root/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '<!doctype html><title>berth-test</title><p>berth-test</p>\n' >"$root/www/index.html"
printf 'ok\n' >"$root/www/health"

tar -C "$root" -c . | docker import \
  --change 'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]' \
  --change 'EXPOSE 80' \
  --change 'WORKDIR /' \
  --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
  - "$IMAGE" >/dev/null
echo "test-image.sh: built $IMAGE"
