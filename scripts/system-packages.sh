#!/usr/bin/env bash
# Install the Debian packages the tests use when they are missing: chromium (the HTML-map test
# renders a page in headless Chromium) and postgresql (multi-worker search tests). Idempotent.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ "${#need[@]}" -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: ${need[*]} missing and no apt-get here; the tests that need them will skip" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
echo "system-packages: installing ${need[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
  $SUDO apt-get update -q >/dev/null 2>&1
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
}
