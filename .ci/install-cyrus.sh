#!/usr/bin/env bash
# Cyrus IMAP (+ CalDAV/CardDAV/JMAP httpd) for adapter tests. Idempotent.
# apt refuses cyrus-imapd next to dovecot-imapd, so the imapd binaries are unpacked from the
# downloaded .deb into a stable folder ($CYRUS_IMAPD_ROOT, default /opt/deltasync-cyrus-imapd).
set -euo pipefail
root="${CYRUS_IMAPD_ROOT:-/opt/deltasync-cyrus-imapd}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

missing=()
for p in cyrus-common cyrus-caldav cyrus-clients sasl2-bin; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
updated=0
if [ "${#missing[@]}" -gt 0 ]; then
  $sudo apt-get update
  updated=1
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$root/usr/lib/cyrus/bin/imapd" ]; then
  [ "$updated" = 1 ] || $sudo apt-get update
  tmp="$(mktemp -d)"
  chmod 777 "$tmp" # apt downloads as the _apt user
  (cd "$tmp" && apt-get download cyrus-imapd)
  $sudo mkdir -p "$root"
  $sudo dpkg-deb -x "$tmp"/cyrus-imapd_*.deb "$root"
  rm -rf "$tmp"
fi
test -x "$root/usr/lib/cyrus/bin/imapd"
echo "cyrus ok: $root/usr/lib/cyrus/bin/imapd"
