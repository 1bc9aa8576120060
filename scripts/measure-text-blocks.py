#!/usr/bin/env python3
"""Measures the LZ4 text block size for segment files (format-spec.md, "Why this block size").

Corpus: every plain-text copyright/README file under /usr/share/doc (or the files given as
arguments), cut into ~1 KiB chunks on line boundaries the way a chunker would, packed into
blocks exactly as SegmentWriter packs them (a block is closed before the chunk that would make
it exceed the block size). For each block size it prints the compression ratio, how far that
is from compressing the whole text as one LZ4 block, and what one search hit costs: the bytes
decompressed and the time to decompress one block.

Run: PYTHONPATH=.pydeps python3 scripts/measure-text-blocks.py
"""
import glob, sys, time
import lz4.block

paths = sys.argv[1:] or sorted(glob.glob('/usr/share/doc/*/copyright') + glob.glob('/usr/share/doc/*/README*'))
texts = []
for p in paths:
    if p.endswith('.gz'):
        continue
    try:
        texts.append(open(p, 'rb').read())
    except OSError:
        pass
chunks = []
for t in texts:
    cur = b''
    for line in t.splitlines(keepends=True):
        cur += line
        if len(cur) >= 1024:
            chunks.append(cur); cur = b''
    if cur:
        chunks.append(cur)
whole = b''.join(chunks)
def comp(b):
    return lz4.block.compress(b, mode='default', store_size=False)
whole_c = len(comp(whole))
print(f'corpus: {len(texts)} files, {len(chunks)} chunks, {len(whole)} bytes; whole-text LZ4 ratio {len(whole)/whole_c:.3f}')
print('| block | blocks | compressed bytes | ratio | vs whole | bytes decompressed per hit | µs per hit |')
print('|---|---|---|---|---|---|---|')
for kib in (4, 8, 16, 32, 64, 128):
    size = kib * 1024
    blocks, cur = [], b''
    for c in chunks:
        if cur and len(cur) + len(c) > size:
            blocks.append(cur); cur = b''
        cur += c
    if cur:
        blocks.append(cur)
    cs = [comp(b) for b in blocks]
    total = sum(len(c) + 8 for c in cs)  # + the 8-byte block header, + 16-byte index entry below
    total += 16 * len(blocks)
    reps = max(1, 2000 // len(blocks))
    t0 = time.perf_counter()
    for _ in range(reps):
        for c, b in zip(cs, blocks):
            lz4.block.decompress(c, uncompressed_size=len(b))
    us = (time.perf_counter() - t0) / (reps * len(blocks)) * 1e6
    avg = sum(len(b) for b in blocks) / len(blocks)
    # A hit lands in a block with probability proportional to its size.
    per_hit = sum(len(b) * len(b) for b in blocks) / len(whole)
    print(f'| {kib} KiB | {len(blocks)} | {total} | {len(whole)/total:.3f} | {100*(whole_c/total-1):+.1f}% | {per_hit:.0f} | {us:.1f} |')
