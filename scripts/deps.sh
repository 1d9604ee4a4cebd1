#!/bin/sh
# Installs the system packages flowstate builds against, when missing:
# RocksDB's C library (for grocksdb), wabt (wat2wasm, for test guests) and
# chromium (the status page's browser test, driven headless by chromedp).
set -eu
missing=""
for pkg in librocksdb-dev wabt chromium; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $pkg"
	fi
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
