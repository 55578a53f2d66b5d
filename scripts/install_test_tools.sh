#!/usr/bin/env bash
# System tools the test suite needs besides Python packages: PgBouncer (the
# concurrency tests start a real one in front of PostgreSQL). Installs the
# Debian/Ubuntu package when it is missing, with sudo unless run as root.
set -euo pipefail
if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "error: install PgBouncer with your system's package manager, then run the tests" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq pgbouncer
