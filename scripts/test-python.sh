#!/usr/bin/env bash
# The tests with real clients (Tests/Python/test_clients.py): the official MCP Python SDK over
# `kbindex mcp` (stdio) and `kbindex serve` (/mcp, with and without a token), and schemathesis
# against the served openapi.json. scripts/test.sh runs it after `swift test`; by hand:
#
#   scripts/test-python.sh                 # every part
#   scripts/test-python.sh --only stdio    # or http, schemathesis, kubernetes (repeatable)
#
# Makes the virtualenv .venv-tests from Tests/Python/requirements.txt (pinned versions, from
# PyPI; scripts/python-venv.sh) the first time, and builds kbindex unless $KBINDEX_BIN names a binary. Needs the
# default model in the model store (scripts/install-model.sh). The last line is
# "python: N passed, N failed"; the exit status is non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The virtualenv (made the first time, and again when the requirements change).
venv=$(scripts/python-venv.sh)

if [ -z "${KBINDEX_BIN:-}" ]; then
  swift build --product kbindex >&2
  KBINDEX_BIN="$(swift build --show-bin-path)/kbindex"
fi

exec "$venv/bin/python" Tests/Python/test_clients.py --kbindex "$KBINDEX_BIN" "$@"
