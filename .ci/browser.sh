#!/usr/bin/env bash
# Installs Debian's chromium for the demo's browser test when it is missing.
# .ci/run sources or calls this script; it does nothing else.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
	echo "== installing chromium"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
