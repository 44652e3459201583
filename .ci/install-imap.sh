#!/usr/bin/env bash
# Dovecot IMAP server for adapter tests. Idempotent.
set -euo pipefail
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
if ! dpkg -s dovecot-imapd >/dev/null 2>&1 || ! command -v dovecot >/dev/null 2>&1; then
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends dovecot-imapd
fi
echo "dovecot ok: $(command -v dovecot)"
