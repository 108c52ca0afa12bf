#!/usr/bin/env bash
# Install the Debian packages the suite needs, only when missing (keeps `make test` fast).
# Fails with a clear message — never a silent skip — when they cannot be installed.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} — run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have empty package lists.
apt-get update -qq >/dev/null || { echo "apt-get update failed; cannot install ${missing[*]}" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  echo "apt-get install failed for: ${missing[*]}" >&2
  exit 1
}
