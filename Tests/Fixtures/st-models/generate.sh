#!/bin/sh
# Rewrites the tiny sentence-transformers models and golden vectors of this folder (see
# README.md) used by Tests/KBEmbedTests/SentenceTransformersParityTests.swift. Needs python3.11
# and PyPI; the virtualenv lives in .build-venv/ next to this script (ignored by git).
# Usage: Tests/Fixtures/st-models/generate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.build-venv"
python=${PYTHON:-python3.11}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    # torch 2.13.0+cpu is on PyPI for CPython 3.11 only; transformers 5 needs 3.12.
    "$venv/bin/pip" install --quiet "torch==2.13.0+cpu" "transformers==4.57.6" "sentence-transformers==5.7.0"
fi
PYTHONHASHSEED=0 "$venv/bin/python" "$here/generate.py"
du -sh "$here"/*/ "$here"/*.json
