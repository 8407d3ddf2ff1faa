#!/usr/bin/env bash
# Installs the Debian packages that oathdesk builds against and the test suite runs for real (no mocks):
# PostgreSQL, pcscd with the virtual reader, Chromium, oathtool (an oracle),
# and swig + libpcsclite-dev that pyscard needs to build. Skips what is present.
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# "build": what installing the Python packages needs (pyscard compiles against PC/SC).
# "test": that plus the real servers and oracles the test suite runs.
case "${1:-test}" in
  build) wanted=(swig libpcsclite-dev pcscd) ;;
  test) wanted=(swig libpcsclite-dev pcscd vsmartcard-vpcd postgresql oathtool chromium) ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac
for pkg in "${wanted[@]}"; do
  have "$pkg" || need+=("$pkg")
done
if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
echo "Installing system packages: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts these services on install; the tests start their own instances.
$SUDO service pcscd stop >/dev/null 2>&1 || true
$SUDO service postgresql stop >/dev/null 2>&1 || true
