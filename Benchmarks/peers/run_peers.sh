#!/usr/bin/env bash
# Runs search_peers.py (faiss-cpu, usearch, numpy) in a virtual environment of its own, made
# from PyPI on first use in Benchmarks/.venv-peers (pinned versions, so results are comparable
# across runs). Usage: Benchmarks/peers/run_peers.sh EXPORT_DIR [--threads T] [-k K] [--batch B]
# where EXPORT_DIR comes from `kbindex-bench search --export EXPORT_DIR`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv-peers"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import faiss, usearch, numpy" 2>/dev/null; then
  echo "peers: creating $venv (faiss-cpu, usearch, numpy from PyPI)..." >&2
  python3 -m venv "$venv" || { echo "error: python3 -m venv failed; on Debian: apt-get install python3-venv" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check faiss-cpu==1.15.1 usearch==2.26.6 numpy==2.4.6 >&2
fi
exec "$venv/bin/python" "$here/search_peers.py" "$@"
