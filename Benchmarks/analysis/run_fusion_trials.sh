#!/usr/bin/env bash
# Runs fusion_trials.py on a kbindex index of the Python docs with both question sets.
# Usage (from the repository root, after scripts/demo.sh):
#   Benchmarks/analysis/run_fusion_trials.sh [.demo/pydocs.kbindex]
# Makes Benchmarks/.venv-analysis from PyPI (lz4 for the spec reader, PyStemmer) on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
index="${1:-$root/.demo/pydocs.kbindex}"
kbindex="$root/.build/release/kbindex"
venv="$root/Benchmarks/.venv-analysis"
[ -x "$kbindex" ] || { echo "error: build kbindex first: swift build -c release" >&2; exit 1; }
segments=("$index"/*.kbseg)
[ "${#segments[@]}" -eq 1 ] || { echo "error: $index has ${#segments[@]} segments; run 'kbindex compact --index $index' first" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import lz4, Stemmer" 2>/dev/null; then
  echo "creating $venv (lz4, PyStemmer from PyPI)..." >&2
  python3 -m venv "$venv" || { echo "error: python3 -m venv failed; on Debian: apt-get install python3-venv" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check lz4==4.4.5 PyStemmer==3.1.0 >&2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" "$root/Tests/SpecReader/read_segment.py" "${segments[0]}" --json --no-vectors > "$work/segment.json"
args=()
for pair in dev:python-docs-dev test:python-docs; do
  name="${pair%%:*}" set="${pair#*:}"
  tsv="$root/Benchmarks/questions/$set.tsv"
  tail -n +2 "$tsv" | cut -f2 > "$work/$set.txt"
  "$kbindex" query --index "$index" --batch "$work/$set.txt" --mode vector -k 2000 --json > "$work/$set.jsonl"
  args+=(--set "$name" "$tsv" "$work/$set.jsonl")
done
"$venv/bin/python" "$root/Benchmarks/analysis/fusion_trials.py" --segment-json "$work/segment.json" "${args[@]}"
