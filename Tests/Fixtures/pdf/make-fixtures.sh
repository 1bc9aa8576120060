#!/bin/sh
# Rewrites the committed PDF fixtures of Tests/KBIngestTests/PDF*.swift and
# Tests/KBIndexCLITests/PDFBuildTests.swift. Needs python3 and PyPI (reportlab, pypdf, pillow);
# the virtualenv lives in .build-venv/ next to this script (ignored by git).
# Usage: Tests/Fixtures/pdf/make-fixtures.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.build-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "reportlab==4.*" "pypdf==5.*" pillow
fi
"$venv/bin/python" "$here/make_fixtures.py" "$here"
ls -l "$here"/*.pdf
