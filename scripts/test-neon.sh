#!/usr/bin/env bash
# The AArch64 NEON kernels, run for real on any machine: cross-compiles the C kernels
# (Sources/CKBKernels) and their bit-for-bit test against the scalar twins
# (Tests/Emulated/neon_kernels_test.c) for aarch64 with the Swift toolchain's clang, links them
# with Debian's aarch64 cross toolchain, and runs the result under qemu-user on three CPU
# models, one per set of scan paths:
#   max          dotprod and i8mm: the sdot single-query tile and the i8mm (smmla) packed kernel;
#   neoverse-n1  dotprod without i8mm: the sdot tile and the sdot-by-element packed kernel;
#   cortex-a53   neither: the vmull/vpadal tile and packed kernel (and the dot/GEMM kernels'
#                vmull path).
# scripts/test.sh runs it after the Swift and Python tests; by hand:
#
#   scripts/test-neon.sh
#
# Installs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user-static when missing
# (apt-get, as root or with sudo). The last line is "neon: N passed, N failed", one result per
# CPU model (3); the exit status is non-zero when a check failed or the emulator did not run the
# paths it was meant to.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "error: needs ${missing[*]} (Debian packages) to cross-compile and emulate aarch64"; echo "neon: 0 passed, 1 failed"; exit 1; }
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing the aarch64 cross toolchain and qemu-user: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

clang="$(dirname "$(readlink -f "$(command -v swift)")")/clang"
[ -x "$clang" ] || clang=clang
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in Tests/Emulated/neon_kernels_test.c Sources/CKBKernels/*.c; do
  "$clang" --target=aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include -O2 -std=gnu11 -Wall -Werror \
    -ISources/CKBKernels/include -ISources/CKBKernels -c "$f" -o "$out/$(basename "$f" .c).o"
done
aarch64-linux-gnu-gcc "$out"/*.o -o "$out/neon-test" -lm

# One result per CPU model: passed when every check in it passed and the features and scan
# paths meant for that model were the ones seen (its own line gives the checks' count).
passed=0 failed=0
# CPU model | what the harness must print for its features | and for its scan paths
runs=(
  "max|dotprod yes, i8mm yes|neon sdot tile8 (1 query), neon i8mm packed2x8 (8 queries)"
  "neoverse-n1|dotprod yes, i8mm no|neon sdot tile8 (1 query), neon sdot packed4x4 (8 queries)"
  "cortex-a53|dotprod no, i8mm no|neon smull tile8 (1 query), neon smull packed (8 queries)"
)
for run in "${runs[@]}"; do
  IFS='|' read -r cpu features paths <<<"$run"
  log=$(qemu-aarch64-static -cpu "$cpu" -L /usr/aarch64-linux-gnu "$out/neon-test" 2>&1) || true
  echo "$log" | sed "s/^/qemu -cpu $cpu: /"
  if echo "$log" | grep -qE "^neon: [0-9]+ passed, 0 failed$" && echo "$log" | grep -q ", $features$" \
     && echo "$log" | grep -qxF "scan paths: $paths"; then
    passed=$((passed + 1))
  else
    echo "qemu -cpu $cpu: FAILED (a check failed, or what ran is not what this CPU model is meant for: $features; $paths)"
    failed=$((failed + 1))
  fi
done
echo "neon: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
