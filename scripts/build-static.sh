#!/usr/bin/env bash
# Vendors the dashboard's front-end libraries from npm into static/vendor/ (never a CDN).
# Versions are pinned by frontend/package-lock.json; `npm ci` checks their integrity hashes.
# A no-op when static/vendor/ was built from the current lockfile. Usage: scripts/build-static.sh
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
frontend="$repo/frontend"
vendor="$repo/static/vendor"
stamp="$vendor/.lockfile"

if [ -f "$stamp" ] && cmp -s "$stamp" "$frontend/package-lock.json"; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "npm is missing: run scripts/system-deps.sh (Debian packages nodejs and npm)" >&2
  exit 1
fi

echo "vendoring front-end libraries into static/vendor/ (npm ci in frontend/)"
(cd "$frontend" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

modules="$frontend/node_modules"
building="$(mktemp -d "$repo/static/.vendor.XXXXXX")"
trap 'rm -rf "$building"' EXIT
cp "$modules/htmx.org/dist/htmx.min.js" "$building/htmx.min.js"
cp "$modules/@xterm/xterm/lib/xterm.js" "$building/xterm.js"
cp "$modules/@xterm/xterm/css/xterm.css" "$building/xterm.css"
cp "$modules/@xterm/addon-fit/lib/addon-fit.js" "$building/addon-fit.js"
cp "$modules/uplot/dist/uPlot.iife.min.js" "$building/uPlot.iife.min.js"
cp "$modules/uplot/dist/uPlot.min.css" "$building/uPlot.min.css"
for package in htmx.org @xterm/xterm @xterm/addon-fit uplot; do
  licence="$(ls "$modules/$package" | grep -i -m1 '^licen[cs]e' || true)"
  name="${package#@}"
  [ -n "$licence" ] && cp "$modules/$package/$licence" "$building/LICENSE.${name//\//-}"
done
cp "$frontend/package-lock.json" "$building/.lockfile"

# Swap the whole directory in at once: a half-built vendor dir is never served.
rm -rf "$vendor.old"
[ -d "$vendor" ] && mv "$vendor" "$vendor.old"
mv "$building" "$vendor"
chmod 755 "$vendor"
rm -rf "$vendor.old"
trap - EXIT
