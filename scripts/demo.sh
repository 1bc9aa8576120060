#!/usr/bin/env bash
# From a fresh Debian machine (with the Swift 6 toolchain) to a working demo: installs the
# system packages, the default model, builds kbindex in release, and embeds a question.
# This is the README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v swift >/dev/null || { echo "error: the Swift toolchain (6.x) is not on PATH; see https://www.swift.org/install/linux/" >&2; exit 1; }
scripts/install-deps.sh
scripts/install-model.sh
echo "building kbindex (release)..."
swift build -c release --product kbindex 2>&1 | grep -E "error|warning: unre|Compiling kbindex|Build complete" || true
bin=$(swift build -c release --show-bin-path)/kbindex
[ -x "$bin" ] || { echo "error: the build did not produce $bin" >&2; exit 1; }

echo
echo "\$ kbindex model list"
"$bin" model list
echo
echo "\$ kbindex embed \"How do I rebuild the index?\"   (first lines)"
"$bin" embed "How do I rebuild the index?" | head -n 4
echo
echo "kbindex is at $bin"
