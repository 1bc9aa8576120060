#!/usr/bin/env bash
# From a fresh Debian machine (with the Swift 6 toolchain) to a working demo: installs the
# system packages, the default model and Debian's Python documentation (python3.11-doc, a
# real corpus of ~500 HTML pages), builds kbindex in release, indexes the documentation and
# asks it a question. This is the README's first command. Indexing takes a few minutes on
# two cores; the index goes to .demo/pydocs.kbindex (rebuilt each run).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v swift >/dev/null || { echo "error: the Swift toolchain (6.x) is not on PATH; see https://www.swift.org/install/linux/" >&2; exit 1; }
scripts/install-deps.sh
scripts/install-model.sh
echo "building kbindex (release)..."
swift build -c release --product kbindex 2>&1 | grep -E "error|warning: unre|Compiling kbindex|Build complete" || true
bin=$(swift build -c release --show-bin-path)/kbindex
[ -x "$bin" ] || { echo "error: the build did not produce $bin" >&2; exit 1; }

docs=/usr/share/doc/python3.11/html
if [ ! -f "$docs/index.html" ]; then
  echo "installing Debian's Python documentation (python3.11-doc)..."
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3.11-doc >/dev/null
fi
mkdir -p .demo
echo
echo "\$ kbindex build $docs --index .demo/pydocs.kbindex --exclude '_sources/**' --exclude 'genindex*'"
"$bin" build "$docs" --index .demo/pydocs.kbindex --exclude '_sources/**' --exclude 'genindex*'
echo
echo "\$ kbindex query --index .demo/pydocs.kbindex -k 3 \"how do I read a file line by line?\""
"$bin" query --index .demo/pydocs.kbindex -k 3 "how do I read a file line by line?"
echo
echo "kbindex is at $bin; try: $bin query --index .demo/pydocs.kbindex \"your question\""
