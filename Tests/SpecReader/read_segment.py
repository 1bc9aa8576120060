#!/usr/bin/env python3
"""An independent reader of kbindex segment files (format versions 1 and 2), written from
format-spec.md alone: Python 3.11 standard library plus `lz4.block`. Section numbers (§) and
check numbers (#) below refer to format-spec.md.

It opens a segment, performs every reader check of §10 (#1-#22 in the spec's order, then the
checks kbindex defers: #23 every section's CRC32C, #24/#25 every text block's header and LZ4
data), and prints the contents.

    python3 read_segment.py SEGMENT            a summary
    python3 read_segment.py SEGMENT --json     one JSON object: header, sections, model,
                                               documents, text blocks, chunks (heading path,
                                               lines, bytes, text, scale, sum, dequantized
                                               vector)

Options: --no-text, --no-vectors leave those out of the JSON.

Exit status: 0 the segment is valid; 1 it is not (or cannot be read): one line on stderr,
"error: SEGMENT: <kind>: <reason>", with kind one of bad_magic, truncated,
unsupported_version, checksum_mismatch, out_of_bounds, corrupt, io; 2 usage error; 3 the lz4
module is missing.

Given a deletion file (magic "KBDL", §13.4) instead, it performs that section's checks and
prints its document count and the deleted documents (--json: one object with
document_count, deleted_count and deleted, the sorted list of deleted document indexes).

The lz4 module comes from PyPI (`lz4`); scripts/test.sh installs it into <repo>/.pydeps:
    PYTHONPATH=.pydeps python3 Tests/SpecReader/read_segment.py SEGMENT --json
"""
import argparse
import array
import json
import math
import struct
import sys

try:
    import lz4.block as lz4block
except ImportError:  # reported in main(), so that importing this file never fails
    lz4block = None

MAGIC = bytes([0x4B, 0x42, 0x53, 0x45, 0x47, 0x00, 0x00, 0x01])  # §4
VERSIONS = (1, 2)  # §4: the same layout; 2 allows a version-2 model descriptor (§8.3)
HEADER_SIZE = 64
DIR_ENTRY_SIZE = 32
FOOTER_SIZE = 16
MAX_SECTIONS = 4096
ALIGN = 64
DOC_SIZE = 64          # §8.4
CHUNK_SIZE = 56        # §8.5
QUANT_SIZE = 8         # §8.2
REF_SIZE = 8           # §8.6
INDEX_SIZE = 16        # §8.8
BLOCK_HEADER_SIZE = 8  # §8.9
MAX_BLOCK = 0x7E000000

VECTORS, QUANT, MODEL, DOCUMENTS, CHUNKS, HEADINGS, STRINGS, TEXT_INDEX, TEXT, LEXICAL = range(1, 11)
KIND_NAMES = {
    VECTORS: 'VECTORS', QUANT: 'QUANT', MODEL: 'MODEL', DOCUMENTS: 'DOCUMENTS', CHUNKS: 'CHUNKS',
    HEADINGS: 'HEADINGS', STRINGS: 'STRINGS', TEXT_INDEX: 'TEXT_INDEX', TEXT: 'TEXT', LEXICAL: 'LEXICAL',
}
OPTIONAL_KINDS = {LEXICAL}  # §8.11: segments written before it existed lack it
# §8.3.1: a version-1 descriptor's required keys and JSON types.
MODEL_KEYS = {'name': str, 'dimensions': int, 'pooling': str, 'normalized': bool,
              'maxTokens': int, 'weightsSHA256': str}
# §8.3.1, §8.3.2: optional keys, each a string when present and not null.
MODEL_OPTIONAL_KEYS = {'precision': str}
# §8.3.2: a version-2 descriptor's keys for every provider, then per kind of provider.
MODEL_V2_KEYS = {'provider': str, 'name': str, 'dimensions': int, 'normalized': bool, 'maxTokens': int}
MODEL_V2_LOCAL = {'pooling': str, 'weightsSHA256': str}    # required for "local"; absent otherwise
MODEL_V2_REMOTE = {'model': str, 'url': str}                # required, not empty, for others; absent for "local"
MODEL_V2_OPTIONAL_KEYS = {'precision': str, 'queryPrompt': str, 'documentPrompt': str}


class SegmentError(Exception):
    def __init__(self, kind, reason):
        super().__init__(f'{kind}: {reason}')
        self.kind = kind
        self.reason = reason


def _crc_table():
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data) -> int:
    """CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF (§7)."""
    t = _CRC_TABLE
    crc = 0xFFFFFFFF
    for byte in data:
        crc = t[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def align64(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lz4_decompress(data, size):
    """One LZ4 block (§12) of exactly `size` bytes; raises SegmentError otherwise."""
    if size == 0:
        # python-lz4 treats a zero size specially; an empty block is the single byte 0x00.
        if bytes(data) == b'\x00':
            return b''
        raise ValueError('an empty block must be the single byte 0x00')
    out = lz4block.decompress(bytes(data), uncompressed_size=size)
    if len(out) != size:
        raise ValueError(f'decompressed to {len(out)} bytes')
    return out


class Segment:
    """A validated segment. Raises SegmentError on the first failed check."""

    def __init__(self, data: bytes):
        self.data = b = memoryview(data)
        S = len(b)
        u32 = lambda at: struct.unpack_from('<I', b, at)[0]
        u64 = lambda at: struct.unpack_from('<Q', b, at)[0]

        # #1 magic (only when there are 8 bytes to compare), #2 size.
        if S >= 8 and bytes(b[0:8]) != MAGIC:
            raise SegmentError('bad_magic', 'not a kbindex segment (bad magic bytes)')
        if S < HEADER_SIZE + FOOTER_SIZE:
            raise SegmentError('truncated', f'{S} bytes, shorter than a header and a footer')
        # #3 version, before any checksum.
        version = u32(8)
        if version not in VERSIONS:
            raise SegmentError('unsupported_version', f'format version {version}; this reader reads 1 and 2')
        file_size = u64(56)
        F = S - FOOTER_SIZE
        # #4 footer magic, #5 footer reserved.
        if bytes(b[F + 8:S]) != MAGIC:
            if file_size > S:
                raise SegmentError('truncated', f'{S} bytes, the header says {file_size}; the footer is missing')
            raise SegmentError('corrupt', "the footer's magic bytes are missing")
        if u32(F + 4) != 0:
            raise SegmentError('corrupt', "the footer's reserved field is not zero")
        # #6 section count.
        n = u32(16)
        dir_end = HEADER_SIZE + DIR_ENTRY_SIZE * n
        if n > MAX_SECTIONS or dir_end > F:
            raise SegmentError('out_of_bounds', f'section count {n}')
        # #7 header + directory checksum.
        if crc32c(b[0:dir_end]) != u32(F):
            raise SegmentError('checksum_mismatch', 'the header/directory checksum does not match')
        # #8 declared size, #9 flags.
        if file_size != S:
            if file_size > S:
                raise SegmentError('truncated', f'{S} bytes, the header says {file_size}')
            raise SegmentError('corrupt', f'the file has {S} bytes, its header says {file_size}')
        flags = u32(12)
        if flags != 0:
            raise SegmentError('corrupt', f'unknown flags 0x{flags:08x}')

        self.header = {
            'version': version, 'flags': flags, 'section_count': n, 'dimensions': u32(20),
            'document_count': u64(24), 'chunk_count': u64(32), 'row_stride': u32(40),
            'text_block_size': u32(44), 'text_block_count': u32(48), 'file_size': file_size,
        }

        # #10-#12 directory entries.
        self.sections_listed = []
        secs = {}
        for i in range(n):
            e = HEADER_SIZE + DIR_ENTRY_SIZE * i
            kind, crc, off, length = u32(e), u32(e + 4), u64(e + 8), u64(e + 16)
            known = kind in KIND_NAMES
            self.sections_listed.append({
                'kind': kind, 'name': KIND_NAMES.get(kind), 'offset': off, 'length': length,
                'crc32c': crc, 'ignored': not known,
            })
            if not known:
                continue  # unknown kinds are skipped entirely
            name = KIND_NAMES[kind]
            if off % ALIGN != 0 or off < dir_end or off > F or length > F - off:
                raise SegmentError('out_of_bounds', f'section {name} (offset {off}, length {length})')
            if kind in secs:
                raise SegmentError('corrupt', f'section {name} appears twice')
            secs[kind] = (off, length, crc)
        for kind in sorted(KIND_NAMES):
            if kind not in secs and kind not in OPTIONAL_KINDS:
                raise SegmentError('corrupt', f'section {KIND_NAMES[kind]} is missing')
        # #13 overlap.
        ordered = sorted(secs.values(), key=lambda s: (s[0], s[1]))
        for a, z in zip(ordered, ordered[1:]):
            if a[0] + a[1] > z[0]:
                raise SegmentError('corrupt', f'sections overlap at offset {z[0]}')
        self.secs = secs

        # #14 shape.
        dims, stride = self.header['dimensions'], self.header['row_stride']
        if dims < 1 or stride != align64(dims):
            raise SegmentError('corrupt', f'dimensions {dims} with row stride {stride}')
        # #15 lengths against counts.
        docs, chunks, blocks = self.header['document_count'], self.header['chunk_count'], self.header['text_block_count']
        for kind, count, size, what in ((VECTORS, chunks, stride, 'chunk count'), (QUANT, chunks, QUANT_SIZE, 'chunk count'),
                                        (CHUNKS, chunks, CHUNK_SIZE, 'chunk count'), (DOCUMENTS, docs, DOC_SIZE, 'document count'),
                                        (TEXT_INDEX, blocks, INDEX_SIZE, 'text block count')):
            if count * size != secs[kind][1]:
                raise SegmentError('out_of_bounds', f'the {what} ({count}) for section {KIND_NAMES[kind]} of {secs[kind][1]} bytes')
        # #16 HEADINGS.
        if secs[HEADINGS][1] % REF_SIZE != 0:
            raise SegmentError('corrupt', 'HEADINGS is not a whole number of entries')
        # #17, #18 MODEL.
        self.model = self._model(dims, version)

        # #19 document strings, #20 heading strings.
        strings_off, strings_len, _ = secs[STRINGS]
        docs_off = secs[DOCUMENTS][0]
        heads_off, heads_len, _ = secs[HEADINGS]

        def check_ref(at, what):
            if u32(at) + u32(at + 4) > strings_len:
                raise SegmentError('out_of_bounds', f'{what} is out of bounds')

        for i in range(docs):
            r = docs_off + DOC_SIZE * i
            check_ref(r, f'the path of document {i}')
            check_ref(r + 8, f'the title of document {i}')
        heading_count = heads_len // REF_SIZE
        for i in range(heading_count):
            check_ref(heads_off + REF_SIZE * i, f'heading string {i}')
        # #21 text index.
        text_off, text_len, _ = secs[TEXT]
        index_off = secs[TEXT_INDEX][0]
        self.blocks = []
        for k in range(blocks):
            e = index_off + INDEX_SIZE * k
            off, clen, ulen = u64(e), u32(e + 8), u32(e + 12)
            if (off > text_len or clen + BLOCK_HEADER_SIZE > text_len - off or ulen > MAX_BLOCK
                    or clen > ulen + ulen // 255 + 16):
                raise SegmentError('out_of_bounds', f'text block {k} is out of bounds')
            self.blocks.append((off, clen, ulen))
        # #22 chunk references.
        chunks_off = secs[CHUNKS][0]
        for i in range(chunks):
            r = chunks_off + CHUNK_SIZE * i
            if u32(r) >= docs:
                raise SegmentError('out_of_bounds', f'the document of chunk {i} is out of bounds')
            if u32(r + 32) + u32(r + 36) > heading_count:
                raise SegmentError('out_of_bounds', f'the headings of chunk {i} are out of bounds')
            block, off, length = u32(r + 40), u32(r + 44), u32(r + 48)
            if length > 0 and (block >= blocks or off + length > self.blocks[block][2]):
                raise SegmentError('out_of_bounds', f'the text of chunk {i} is out of bounds')
            # #22b the location unit (0 lines, 1 pages, 2 paragraphs) and its three reserved bytes.
            if u32(r + 52) > 2:
                raise SegmentError('corrupt', f'chunk {i} has an unknown location unit or a nonzero reserved byte')

        # #22a the LEXICAL section's header, when present (the rest is decoded after #23).
        if LEXICAL in secs:
            lexical_header_checks(b, *secs[LEXICAL][:2], chunks)

        # #23 section checksums, in file order.
        for kind, (off, length, crc) in sorted(secs.items(), key=lambda kv: kv[1][0]):
            if crc32c(b[off:off + length]) != crc:
                raise SegmentError('checksum_mismatch', f'the {KIND_NAMES[kind]} checksum does not match')
        # #24, #25 every text block.
        self.block_text = []
        for k, (off, clen, ulen) in enumerate(self.blocks):
            at = text_off + off
            if u32(at) != clen or u32(at + 4) != ulen:
                raise SegmentError('corrupt', f"text block {k}'s header disagrees with TEXT_INDEX")
            try:
                self.block_text.append(lz4_decompress(b[at + BLOCK_HEADER_SIZE:at + BLOCK_HEADER_SIZE + clen], ulen))
            except Exception as e:  # lz4.block.LZ4BlockError, ValueError
                raise SegmentError('corrupt', f'text block {k} does not decompress to {ulen} bytes ({e})') from None

        # §8.11 the LEXICAL section, when present, decoded whole.
        self.lexical = read_lexical(b, *secs[LEXICAL][:2], chunks) if LEXICAL in secs else None

    def _model(self, dims, segment_version):
        off, length, _ = self.secs[MODEL]

        def reject_constant(name):
            raise ValueError(f'{name} is not JSON')

        try:
            m = json.loads(bytes(self.data[off:off + length]).decode('utf-8'), parse_constant=reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise SegmentError('corrupt', f'the MODEL section is not JSON ({e})') from None
        if not isinstance(m, dict):
            raise SegmentError('corrupt', 'the MODEL section is not a JSON object')

        def is_a(v, typ):
            return isinstance(v, typ) and (typ is bool or not isinstance(v, bool))

        def required(keys):
            for key, typ in keys.items():
                if not is_a(m.get(key), typ):
                    raise SegmentError('corrupt', f'the MODEL section has no {typ.__name__} "{key}"')

        def optional(keys):
            for key, typ in keys.items():
                if m.get(key) is not None and not is_a(m[key], typ):
                    raise SegmentError('corrupt', f'the MODEL section\'s "{key}" is not a {typ.__name__}')

        def absent(keys, why):
            for key in keys:
                if m.get(key) is not None:
                    raise SegmentError('corrupt', f'the MODEL section has "{key}", not allowed {why}')

        # §8.3: `version` absent, null or 1 = version 1; 2 = version 2; another integer = a later
        # kbindex's descriptor (unsupported); anything else = damage.
        v = m.get('version')
        if v is not None and not is_a(v, int):
            raise SegmentError('corrupt', 'the MODEL section\'s "version" is not an int')
        if v not in (None, 1, 2):
            raise SegmentError('unsupported_version', f'a model descriptor of version {v}; this reader reads 1 and 2')
        if v == 2:
            required(MODEL_V2_KEYS)
            if m['provider'] == '':
                raise SegmentError('corrupt', 'the MODEL section\'s "provider" is empty')
            if m['provider'] == 'local':
                required(MODEL_V2_LOCAL)
                absent(MODEL_V2_REMOTE, 'for a local model')
            else:
                required(MODEL_V2_REMOTE)
                for key in MODEL_V2_REMOTE:
                    if m[key] == '':
                        raise SegmentError('corrupt', f'the MODEL section\'s "{key}" is empty')
                absent(MODEL_V2_LOCAL, 'for a remote model')
            optional(MODEL_V2_OPTIONAL_KEYS)
            # §10 #17: a version-2 descriptor only in a version-2 segment.
            if segment_version < 2:
                raise SegmentError('corrupt', 'a version-1 segment has a version-2 MODEL section')
        else:
            required(MODEL_KEYS)
            optional(MODEL_OPTIONAL_KEYS)
        if m['dimensions'] != dims:
            raise SegmentError('corrupt', f"the model has {m['dimensions']} dimensions, the header {dims}")
        return m

    # Accessors (every reference was checked above).

    def _u32(self, at):
        return struct.unpack_from('<I', self.data, at)[0]

    def _string(self, at):
        off, length = struct.unpack_from('<II', self.data, at)
        base = self.secs[STRINGS][0]
        return bytes(self.data[base + off:base + off + length]).decode('utf-8', errors='replace')

    def document(self, i):
        r = self.secs[DOCUMENTS][0] + DOC_SIZE * i
        size, mtime = struct.unpack_from('<Qq', self.data, r + 16)
        return {
            'path': self._string(r), 'title': self._string(r + 8), 'size': size, 'mtime_ns': mtime,
            'content_sha256': bytes(self.data[r + 32:r + 64]).hex(),
        }

    def chunk(self, i, text=True, vector=True):
        r = self.secs[CHUNKS][0] + CHUNK_SIZE * i
        (document, ordinal, line_start, line_end, byte_start, byte_end, h_start, h_count,
         block, offset, length, unit) = struct.unpack_from('<IIIIQQIIIIII', self.data, r)
        heads = self.secs[HEADINGS][0]
        c = {
            'document': document, 'ordinal': ordinal, 'line_start': line_start, 'line_end': line_end,
            'byte_start': byte_start, 'byte_end': byte_end,
            'heading_path': [self._string(heads + REF_SIZE * k) for k in range(h_start, h_start + h_count)],
            'text_block': block, 'text_offset': offset, 'text_length': length,
            'unit': ('lines', 'pages', 'paragraphs')[unit],
        }
        if text:
            c['text'] = self.text(i)
        scale, total = struct.unpack_from('<fi', self.data, self.secs[QUANT][0] + QUANT_SIZE * i)
        c['scale'] = scale
        c['sum'] = total
        if vector:
            c['vector'] = self.dequantized(i)
        return c

    def text(self, i):
        """§8.10 (the blocks were decompressed and checked at open)."""
        r = self.secs[CHUNKS][0] + CHUNK_SIZE * i
        block, offset, length = struct.unpack_from('<III', self.data, r + 40)
        if length == 0:
            return ''
        return self.block_text[block][offset:offset + length].decode('utf-8', errors='replace')

    def quantized(self, i):
        at = self.secs[VECTORS][0] + self.header['row_stride'] * i
        return array.array('b', bytes(self.data[at:at + self.header['dimensions']])).tolist()

    def dequantized(self, i):
        """scale · q_j, rounded to f32 as kbindex computes it (§9)."""
        scale = struct.unpack_from('<f', self.data, self.secs[QUANT][0] + QUANT_SIZE * i)[0]
        return array.array('f', [scale * q for q in self.quantized(i)]).tolist()

    def to_json(self, text=True, vectors=True):
        h = self.header
        return {
            'header': h,
            'sections': self.sections_listed,
            'model': self.model,
            'documents': [self.document(i) for i in range(h['document_count'])],
            'text_blocks': [{'block_offset': o, 'compressed_length': c, 'uncompressed_length': u} for o, c, u in self.blocks],
            'chunks': [self.chunk(i, text, vectors) for i in range(h['chunk_count'])],
            'lexical': self.lexical,
        }


def _varint(b, at, end, what):
    """Unsigned LEB128 at b[at:end] (§8.11); returns (value, next offset)."""
    v = shift = 0
    while at < end and shift < 64:
        byte = b[at]
        at += 1
        v |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return v, at
        shift += 7
    raise SegmentError('corrupt', f'LEXICAL: a varint in {what} runs past its end')


def lexical_header_checks(b, off, length, chunks):
    """§10 check 22a: what kbindex checks of LEXICAL at open, in its order."""
    def bad(r):
        return SegmentError('corrupt', f'LEXICAL: {r}')
    if length < 40:
        raise bad('shorter than its header')
    T, B, tokenizer, C, total, D, P = struct.unpack_from('<IHHQQQQ', b, off)
    if B < 1:
        raise bad('block size 0')
    if tokenizer not in (0, 1):
        raise bad(f'tokenizer version {tokenizer} is not one this reader knows (0–1)')
    if C != chunks:
        raise bad(f'{C} chunk lengths for {chunks} chunks')
    nblocks = (T + B - 1) // B
    if T > D // 4 or (T > P // 2 and T != 0):
        raise bad(f'{T} terms in {D} + {P} bytes')
    if 40 + 4 * C + 16 * nblocks + D + P != length:
        raise bad('its lengths do not add up to the section')
    if sum(struct.unpack_from(f'<{C}I', b, off + 40)) != total:
        raise bad('chunk lengths do not add up to total_terms')
    blocks_at = off + 40 + 4 * C
    prev = (0, 0)
    for k in range(nblocks):
        e = struct.unpack_from('<QQ', b, blocks_at + 16 * k)
        if not (e[0] < D and e[1] < P and (e == (0, 0) if k == 0 else (e[0] > prev[0] and e[1] > prev[1]))):
            raise bad(f"block {k}'s offsets")
        prev = e


def read_lexical(b, off, length, chunks):
    """The LEXICAL section (§8.11), every field checked: chunk lengths and each term's postings."""
    def bad(r):
        return SegmentError('corrupt', f'LEXICAL: {r}')
    lexical_header_checks(b, off, length, chunks)
    T, B, tokenizer, C, total, D, P = struct.unpack_from('<IHHQQQQ', b, off)
    nblocks = (T + B - 1) // B
    lengths = list(struct.unpack_from(f'<{C}I', b, off + 40))
    blocks_at = off + 40 + 4 * C
    dict_at, dict_end = blocks_at + 16 * nblocks, blocks_at + 16 * nblocks + D
    post_at = dict_end
    at, ppos, prev, terms = dict_at, 0, b'', []
    counted = [0] * C
    for i in range(T):
        if i % B == 0:
            if struct.unpack_from('<QQ', b, blocks_at + 16 * (i // B)) != (at - dict_at, ppos):
                raise bad(f'block {i // B} offsets')
        shared, at = _varint(b, at, dict_end, 'the dictionary')
        n, at = _varint(b, at, dict_end, 'the dictionary')
        if (i % B == 0 and shared != 0) or shared > len(prev) or at + n > dict_end:
            raise bad(f'dictionary entry {i}')
        term = prev[:shared] + bytes(b[at:at + n])
        at += n
        if i > 0 and term <= prev:
            raise bad('terms are not in strictly increasing byte order')
        df, at = _varint(b, at, dict_end, 'the dictionary')
        plen, at = _varint(b, at, dict_end, 'the dictionary')
        if df < 1 or df > C or ppos + plen > P:
            raise bad(f'postings of term {i}')
        p, pend, chunk, entries = post_at + ppos, post_at + ppos + plen, -1, []
        for k in range(df):
            delta, p = _varint(b, p, pend, 'postings')
            tf, p = _varint(b, p, pend, 'postings')
            chunk = delta if k == 0 else chunk + delta
            if (k > 0 and delta < 1) or chunk >= C or tf < 1:
                raise bad(f'a postings entry of term {i}')
            entries.append([chunk, tf])
            counted[chunk] += tf
        if p != pend:
            raise bad(f'the postings of term {i} do not fill their length')
        ppos += plen
        try:
            terms.append([term.decode('utf-8'), entries])
        except UnicodeDecodeError:
            raise bad(f'term {i} is not UTF-8') from None
        prev = term
    if at != dict_end or ppos != P:
        raise bad('the dictionary or postings have bytes left over')
    if counted != lengths:
        raise bad("a chunk's length is not the sum of its term frequencies")
    return {'tokenizer': tokenizer, 'chunk_lengths': lengths, 'terms': terms}


def _finite(x):
    """JSON has no NaN or infinity: write those as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def read_deletions(data: bytes):
    """A deletion file (§13.4), checked in the spec's order. Raises SegmentError."""
    if len(data) < 28:
        raise SegmentError('truncated', f'{len(data)} bytes, shorter than a deletion file header')
    if data[0:4] != b'KBDL':
        raise SegmentError('bad_magic', 'not a deletion file')
    version, count, deleted = struct.unpack_from('<IQQ', data, 4)
    if version != 1:
        raise SegmentError('unsupported_version', f'deletion file version {version}')
    if len(data) != 28 + (count + 7) // 8:
        raise SegmentError('corrupt', f'{len(data)} bytes for {count} documents')
    (crc,) = struct.unpack_from('<I', data, len(data) - 4)
    if crc32c(data[:-4]) != crc:
        raise SegmentError('checksum_mismatch', 'deletion file')
    bitmap = data[24:-4]
    if count % 8 and bitmap[-1] >> (count % 8):
        raise SegmentError('corrupt', f'bits set past document {count}')
    marked = [i for i in range(count) if bitmap[i // 8] >> (i % 8) & 1]
    if len(marked) != deleted:
        raise SegmentError('corrupt', f'the header counts {deleted} deleted documents, the bitmap {len(marked)}')
    return {'document_count': count, 'deleted_count': deleted, 'deleted': marked}


def main(argv=None):
    ap = argparse.ArgumentParser(description='Validate and dump a kbindex segment file (format versions 1 and 2).')
    ap.add_argument('segment')
    ap.add_argument('--json', action='store_true', help='print one JSON object with everything')
    ap.add_argument('--no-text', action='store_true', help='leave chunk text out of the JSON')
    ap.add_argument('--no-vectors', action='store_true', help='leave dequantized vectors out of the JSON')
    args = ap.parse_args(argv)
    if lz4block is None:
        print("error: the Python module 'lz4' is missing: run scripts/test.sh (it installs lz4 into "
              "<repo>/.pydeps) and set PYTHONPATH=<repo>/.pydeps", file=sys.stderr)
        return 3
    try:
        with open(args.segment, 'rb') as f:
            data = f.read()
    except OSError as e:
        print(f'error: {args.segment}: io: {e.strerror}', file=sys.stderr)
        return 1
    if data[0:4] == b'KBDL':
        try:
            d = read_deletions(data)
        except SegmentError as e:
            print(f'error: {args.segment}: {e}', file=sys.stderr)
            return 1
        if args.json:
            json.dump(d, sys.stdout)
            sys.stdout.write('\n')
        else:
            print(f'{args.segment}: valid kbindex deletion file, {d["document_count"]} documents, '
                  f'{d["deleted_count"]} deleted: {d["deleted"]}')
        return 0
    try:
        seg = Segment(data)
        out = seg.to_json(text=not args.no_text, vectors=not args.no_vectors) if args.json else None
    except SegmentError as e:
        print(f'error: {args.segment}: {e}', file=sys.stderr)
        return 1
    if args.json:
        json.dump(_finite(out), sys.stdout, ensure_ascii=True, allow_nan=False)
        sys.stdout.write('\n')
        return 0
    h = seg.header
    m = seg.model
    print(f'{args.segment}: valid kbindex segment, format version {h["version"]}, {h["file_size"]} bytes')
    norm = "normalized" if m["normalized"] else "not normalized"
    if m.get('version') == 2 and m['provider'] != 'local':
        print(f'model: {m["provider"]} model {m["model"]} at {m["url"]}, {m["dimensions"]} dims, {norm}')
    else:
        print(f'model: {m["name"]}, {m["dimensions"]} dims, {m["pooling"]} pooling, {norm}, weights {m["weightsSHA256"]}')
    for key in ('queryPrompt', 'documentPrompt'):
        if m.get('version') == 2 and m.get(key):
            print(f'{key}: {json.dumps(m[key])}')
    print(f'{h["document_count"]} documents, {h["chunk_count"]} chunks, row stride {h["row_stride"]}, '
          f'{h["text_block_count"]} text blocks (block size {h["text_block_size"]})')
    for s in seg.sections_listed:
        name = s['name'] or f'unknown kind {s["kind"]} (ignored)'
        print(f'  {name:<12} offset {s["offset"]:>10}  length {s["length"]:>10}  crc32c 0x{s["crc32c"]:08x}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
