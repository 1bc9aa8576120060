#!/usr/bin/env python3
"""Measures the LZ4 text block size for segment files (format-spec.md, "Why this block size").

Corpus: the HTML pages of Python's documentation (/usr/share/doc/python3.11/html, Debian's
python3.11-doc; about 530 pages), or the files/folders given as arguments. HTML is reduced to
text roughly: only Sphinx's main body (<div role="main">) when a page has one, tags stripped,
<script>/<style> dropped, entities decoded, a line break at every block-level tag. Plain-text
files are used as they are; a folder contributes its HTML pages (or, without any, its
.txt/.md/.rst files).

Each document is cut into ~1 KiB chunks on line boundaries the way a chunker would, and the
chunks are packed into blocks exactly as SegmentWriter packs them (a block is closed before the
chunk that would make it exceed the block size; a longer chunk gets a block of its own). For
each block size it prints:

  ratio       uncompressed text / (compressed blocks + 8-byte block headers + 16-byte
              TEXT_INDEX entries), i.e. what the TEXT and TEXT_INDEX sections cost;
  vs whole    how much bigger that is than compressing all the text as one LZ4 block;
  per hit     bytes decompressed to show one search hit (the whole block holding the chunk),
              averaged over chunks (every chunk equally likely to be a hit), and the time that
              takes with liblz4 (python-lz4, so a few µs of call overhead are included).

Run: PYTHONPATH=.pydeps python3 scripts/measure-text-blocks.py [FILE_OR_DIR ...]
"""
import html
import html.parser
import os
import sys
import time

import lz4.block

DEFAULT = '/usr/share/doc/python3.11/html'
CHUNK = 1024
BLOCK_TAGS = {
    'p', 'div', 'li', 'ul', 'ol', 'dl', 'dt', 'dd', 'tr', 'table', 'pre', 'br', 'section',
    'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'title', 'hr',
}


class TextExtractor(html.parser.HTMLParser):
    """Text of an HTML page; only inside <div role="main"> if the page has one."""

    def __init__(self, main_only):
        super().__init__(convert_charrefs=True)
        self.main_only = main_only
        self.depth = 0          # div nesting inside the main div (0: outside)
        self.skip = 0           # inside <script> or <style>
        self.out = []

    def capturing(self):
        return not self.main_only or self.depth > 0

    def handle_starttag(self, tag, attrs):
        if tag in ('script', 'style'):
            self.skip += 1
        if tag == 'div':
            if self.depth > 0:
                self.depth += 1
            elif self.main_only and dict(attrs).get('role') == 'main':
                self.depth = 1
        if tag in BLOCK_TAGS and self.capturing():
            self.out.append('\n')

    def handle_endtag(self, tag):
        if tag in ('script', 'style') and self.skip:
            self.skip -= 1
        if tag in BLOCK_TAGS and self.capturing():
            self.out.append('\n')
        if tag == 'div' and self.depth > 0:
            self.depth -= 1

    def handle_data(self, data):
        if self.capturing() and not self.skip:
            self.out.append(data)


def html_text(raw):
    s = raw.decode('utf-8', errors='replace')
    p = TextExtractor(main_only='role="main"' in s)
    p.feed(s)
    p.close()
    lines = [ln.rstrip() for ln in ''.join(p.out).splitlines()]
    # Collapse runs of blank lines.
    text, blank = [], False
    for ln in lines:
        if ln.strip():
            text.append(ln)
            blank = False
        elif not blank and text:
            text.append('')
            blank = True
    return html.unescape('\n'.join(text)).strip() + '\n'


def files(args):
    """The files named, and under each folder its HTML pages, or its .txt/.md/.rst files when it
    has no HTML (so Sphinx's _sources/*.rst.txt copies of the pages are not counted twice)."""
    for a in args:
        if not os.path.isdir(a):
            yield a
            continue
        found = sorted(os.path.join(root, n) for root, _, names in os.walk(a) for n in names)
        pages = [f for f in found if f.endswith(('.html', '.htm'))]
        yield from pages or [f for f in found if f.endswith(('.txt', '.md', '.rst'))]


def chunk(text):
    out, cur = [], b''
    for line in text.splitlines(keepends=True):
        cur += line
        if len(cur) >= CHUNK:
            out.append(cur)
            cur = b''
    if cur.strip():
        out.append(cur)
    return out


def comp(b):
    return lz4.block.compress(b, mode='default', store_size=False)


def main():
    args = sys.argv[1:] or [DEFAULT]
    docs = []
    for p in files(args):
        try:
            raw = open(p, 'rb').read()
        except OSError:
            continue
        text = html_text(raw) if p.endswith(('.html', '.htm')) else raw.decode('utf-8', errors='replace')
        if text.strip():
            docs.append(text.encode('utf-8'))
    if not docs:
        sys.exit(f'no text found in {args} (install python3.11-doc, or pass files)')
    chunks = [c for d in docs for c in chunk(d)]
    whole = b''.join(chunks)
    whole_c = len(comp(whole))
    print(f'corpus: {" ".join(args)}: {len(docs)} documents, {len(chunks)} chunks '
          f'(mean {len(whole) / len(chunks):.0f} bytes), {len(whole)} bytes of text')
    print(f'whole text as one LZ4 block: {whole_c} bytes, ratio {len(whole) / whole_c:.3f}')
    print()
    print('| block size | blocks | TEXT + TEXT_INDEX bytes | ratio | vs whole-text LZ4 | bytes decompressed per hit | µs per hit |')
    print('|---|---|---|---|---|---|---|')
    for kib in (4, 8, 16, 32, 64, 128, 256):
        size = kib * 1024
        blocks, owner, cur = [], [], b''
        for c in chunks:
            if cur and len(cur) + len(c) > size:
                blocks.append(cur)
                cur = b''
            cur += c
            owner.append(len(blocks))  # the block this chunk lands in
        if cur:
            blocks.append(cur)
        cs = [comp(b) for b in blocks]
        total = sum(len(c) + 8 for c in cs) + 16 * len(blocks)
        per_hit = sum(len(blocks[k]) for k in owner) / len(owner)
        # Time decompressing the block of each of (up to) 2000 chunks spread over the corpus;
        # best of 5 runs.
        sample = owner[:: max(1, len(owner) // 2000)]
        best = float('inf')
        for _ in range(5):
            t0 = time.perf_counter()
            for k in sample:
                lz4.block.decompress(cs[k], uncompressed_size=len(blocks[k]))
            best = min(best, time.perf_counter() - t0)
        us = best / len(sample) * 1e6
        print(f'| {kib} KiB | {len(blocks)} | {total} | {len(whole) / total:.3f} | '
              f'{100 * (total / whole_c - 1):+.1f}% | {per_hit:.0f} | {us:.1f} |')


if __name__ == '__main__':
    main()
