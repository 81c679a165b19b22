#!/usr/bin/env bash
# Installs the Debian packages Berth needs that are missing; a no-op when all are there.
# Usage: scripts/system-deps.sh [runtime|test|bench]
set -euo pipefail

runtime_packages=(redis-server busybox-static iproute2 iptables procps ca-certificates gcc libc6-dev
                  libseccomp2)
test_packages=(docker-registry skopeo chromium docker.io)  # docker.io: the reference dockerd
bench_packages=(docker-registry skopeo docker.io runc postgresql)  # postgresql: bench/api.py

wanted=("${runtime_packages[@]}")
case "${1:-runtime}" in
  test) wanted+=("${test_packages[@]}") ;;
  bench) wanted+=("${bench_packages[@]}") ;;
esac
# The dashboard's front-end build (scripts/build-static.sh); a NodeSource nodejs brings its own npm.
if ! command -v npm >/dev/null; then
  wanted+=(nodejs npm)
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  wanted+=(python3-venv)
fi

missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
