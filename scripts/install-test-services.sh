#!/usr/bin/env bash
# Installs the services the test suite runs for real (redis-server, for the shared circuit-breaker
# store and the Celery broker), from Debian/Ubuntu packages, when they are not there yet.
# The tests start and stop their own instances on free 127.0.0.1 ports; nothing is left running.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
# Debian starts the packaged service where systemd runs; the tests need none of it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    $sudo systemctl stop redis-server || true
fi
command -v redis-server
