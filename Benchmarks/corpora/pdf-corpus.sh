#!/bin/sh
# The public PDF corpus of Benchmarks/questions/gnuplot-pdf.tsv and `kbindex-bench extract`:
# the gnuplot 5.4 manual that Debian's gnuplot-doc package ships (/usr/share/doc/gnuplot/
# gnuplot.pdf, 311 pages), copied into a folder of its own so that an index of that folder
# holds the path "gnuplot.pdf" the question set names.
#
#   Benchmarks/corpora/pdf-corpus.sh [DEST]
#
# DEST defaults to Benchmarks/.cache/corpora/gnuplot-pdf (ignored by git). Installs
# gnuplot-doc with apt-get when it is missing (as root, or through sudo). Prints DEST.
# The question set's page numbers were checked against gnuplot-doc 5.4.4+dfsg1-2 (Debian 12);
# another version warns, since its pages may have moved.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/.cache/corpora/gnuplot-pdf}
src=/usr/share/doc/gnuplot/gnuplot.pdf
checked_version=5.4.4+dfsg1-2
checked_pages=311

if [ ! -e "$src" ] && [ ! -e "$src.gz" ]; then
    echo "pdf-corpus: installing Debian's gnuplot-doc (the gnuplot manual as PDF)" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get install -y gnuplot-doc >&2 || { apt-get update >&2 && apt-get install -y gnuplot-doc >&2; }
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get install -y gnuplot-doc >&2 || { sudo apt-get update >&2 && sudo apt-get install -y gnuplot-doc >&2; }
    else
        echo "pdf-corpus: $src is missing: install it with 'apt-get install gnuplot-doc' as root" >&2
        exit 1
    fi
fi

mkdir -p "$dest"
# Debian compresses large documentation files on some releases: take whichever is there.
if [ -e "$src" ]; then
    cp "$src" "$dest/gnuplot.pdf.tmp"
else
    gzip -dc "$src.gz" > "$dest/gnuplot.pdf.tmp"
fi
mv "$dest/gnuplot.pdf.tmp" "$dest/gnuplot.pdf"

version=$(dpkg-query -W -f '${Version}' gnuplot-doc 2>/dev/null || echo unknown)
if [ "$version" != "$checked_version" ]; then
    echo "pdf-corpus: warning: gnuplot-doc $version, but the question set's pages were checked on $checked_version" >&2
fi
if command -v pdfinfo >/dev/null 2>&1; then
    pages=$(pdfinfo "$dest/gnuplot.pdf" | sed -n 's/^Pages: *//p')
    if [ "$pages" != "$checked_pages" ]; then
        echo "pdf-corpus: warning: gnuplot.pdf has $pages pages, the question set expects $checked_pages" >&2
    fi
else
    echo "pdf-corpus: note: pdfinfo (poppler-utils) is not installed; kbindex needs it for PDFs" >&2
fi
echo "$dest"
