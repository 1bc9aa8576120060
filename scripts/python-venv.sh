#!/usr/bin/env bash
# Makes (or reuses) the test virtualenv .venv-tests from Tests/Python/requirements.txt
# (pinned versions, from PyPI) and prints its absolute path as the only line on stdout.
# Used by scripts/test-python.sh (the MCP/HTTP clients) and scripts/test.sh (which exports
# KBINDEX_TEST_PYTHON=<venv>/bin/python so the Swift tests can start moto's S3 server).
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
    $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  # The working venv is moved aside, not removed, until the new one is installed: when pip
  # fails (offline, an index outage) the old one comes back and the tests can still run.
  # (Built in place, not in a temporary folder, because a venv's scripts hold absolute paths.)
  backup="$venv.previous"
  rm -rf "$backup"
  [ -d "$venv" ] && mv "$venv" "$backup"
  if python3 -m venv "$venv" >&2 &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2; then
    cp "$requirements" "$venv/requirements.txt"
    rm -rf "$backup"
  else
    rm -rf "$venv"
    if [ -d "$backup" ]; then
      mv "$backup" "$venv"
      echo "could not install $requirements; keeping the previous $venv" >&2
    else
      echo "could not make the test virtualenv $venv from $requirements" >&2
      exit 1
    fi
  fi
fi
echo "$PWD/$venv"
