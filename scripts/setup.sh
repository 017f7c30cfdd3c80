#!/usr/bin/env bash
# Set up (or refresh) everything wolive needs, idempotently, on a fresh machine:
#   ./scripts/setup.sh          the server: a virtualenv in .venv with wolive installed
#   ./scripts/setup.sh --test   also what the tests need: test packages, the Node clients
#                               (pusher-js, pusher), Debian's Chromium for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.wolive-installed
extras=""
[ $want_test = 1 ] && extras="[test]"
if [ ! -f "$stamp$extras" ] || [ setup.cfg -nt "$stamp$extras" ] ||
   [ constraints.txt -nt "$stamp$extras" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # constraints.txt pins every package (scripts/constraints.py): the same versions everywhere.
  .venv/bin/python -m pip install -q -c constraints.txt -e ".$extras"
  touch "$stamp$extras"
fi

if [ $want_test = 1 ]; then
  if [ ! -d tests/node/node_modules/pusher-js ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    npm ci --prefix tests/node --no-audit --no-fund --silent
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing Debian's chromium for the browser tests" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null
    else
      echo "setup: chromium is missing; browser tests will be skipped" \
           "(sudo apt-get install chromium fonts-noto-cjk fonts-noto-color-emoji)" >&2
    fi
  fi
fi
