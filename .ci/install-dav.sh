#!/usr/bin/env bash
# Installs the CalDAV/CardDAV servers the dav adapter tests run against (Radicale, Xandikos).
# Idempotent: apt-get runs only when something is missing. Cyrus comes from install-cyrus.sh.
set -euo pipefail
missing=()
command -v radicale >/dev/null 2>&1 || missing+=(radicale)
command -v xandikos >/dev/null 2>&1 || missing+=(xandikos)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "dav servers already installed"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
echo "dav servers ok: $(command -v radicale) $(command -v xandikos)"
