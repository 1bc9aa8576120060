#!/usr/bin/env bash
# The tests with real clients (Tests/Python/test_clients.py): the official MCP Python SDK over
# `kbindex mcp` (stdio) and `kbindex serve` (/mcp, with and without a token), and schemathesis
# against the served openapi.json. scripts/test.sh runs it after `swift test`; by hand:
#
#   scripts/test-python.sh                 # every part
#   scripts/test-python.sh --only stdio    # or http, schemathesis, kubernetes (repeatable)
#
# Makes the virtualenv .venv-tests from Tests/Python/requirements.txt (pinned versions, from
# PyPI) the first time, and builds kbindex unless $KBINDEX_BIN names a binary. Needs the
# default model in the model store (scripts/install-model.sh). The last line is
# "python: N passed, N failed"; the exit status is non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-tests
requirements=Tests/Python/requirements.txt
# Rebuilt when the requirements change (their copy inside the venv says what it holds).
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
  # Debian's python3 makes virtualenvs only with python3-venv installed.
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing python3-venv (for the test virtualenv)" >&2
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi

if [ -z "${KBINDEX_BIN:-}" ]; then
  swift build --product kbindex >&2
  KBINDEX_BIN="$(swift build --show-bin-path)/kbindex"
fi

exec "$venv/bin/python" Tests/Python/test_clients.py --kbindex "$KBINDEX_BIN" "$@"
