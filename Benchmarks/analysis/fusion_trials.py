#!/usr/bin/env python3
"""Offline trials of BM25 analyzers and fusion functions on a kbindex index (RESULTS.md, eval).

A prototype, not kbindex: it rebuilds BM25 in memory from the index's chunk texts with
variants kbindex does not ship (Snowball stemming, stop words) and fuses it with kbindex's own
vector rankings, so that each variant can be judged on the question sets without rebuilding
the index. Its tokenizer copies LexicalTokenizer's rules with regular expressions (close, not
identical); its BM25 formula and its convex fusion are kbindex's.

Inputs (run_fusion_trials.sh makes them):
    --segment-json  read_segment.py --json --no-vectors of the index's one segment
    --set NAME TSV HITS   a question file and `kbindex query --batch --mode vector -k 2000
                          --json` over its questions (repeatable; the first set is the one
                          that chooses, the others are reported)
Prints, per analyzer: BM25 alone, and convex fusion over a sweep of alpha; then the
approximate convex variants and reciprocal rank fusion for the plain analyzer.
"""
import argparse
import collections
import json
import math
import re

import Stemmer  # PyStemmer: the Snowball algorithms libstemmer ships

WORD = re.compile(r'\w+(?:\.(?=[^\W_])\w+)*')
CAMEL = re.compile(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])')
STOP = set("a an and are as at be but by for if in into is it no not of on or such that the their then "
           "there these they this to was will with i me my we you your how do does what why when which "
           "can should would could from".split())
STEMMER = Stemmer.Stemmer('english')
DEPTH = 100


def terms(text):
    out = []
    for m in WORD.finditer(text):
        w = m.group(0)
        t = w.lower().strip('_.')
        if t and len(t.encode()) <= 64:
            out.append(t)
        parts = [q for p in re.split(r'[_.]', w) if p for q in CAMEL.split(p) if q]
        if len(parts) > 1:
            out += [p.lower() for p in parts if len(p.encode()) <= 64]
    return out


def analyze(text, stem, stop):
    ts = terms(text)
    if stop:
        ts = [t for t in ts if t not in STOP]
    return STEMMER.stemWords(ts) if stem else ts


class BM25:
    k1, b = 1.2, 0.75

    def __init__(self, texts, stem=False, stop=False):
        self.stem, self.stop = stem, stop
        self.lens, self.post = [], collections.defaultdict(list)
        for i, t in enumerate(texts):
            cnt = collections.Counter(analyze(t, stem, stop))
            self.lens.append(sum(cnt.values()))
            for term, f in cnt.items():
                self.post[term].append((i, f))
        n = len(texts)
        self.avg = sum(self.lens) / n
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.post.items()}

    def scores(self, query):
        s = collections.defaultdict(float)
        for t in set(analyze(query, self.stem, self.stop)):
            for i, f in self.post.get(t, ()):
                s[i] += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.lens[i] / self.avg))
        return s


def ranked(scores):
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


def convex_exact(vec, lex, alpha):
    cos, floor = dict(vec), vec[-1][1]
    cand = {i for i, _ in vec[:DEPTH]} | {i for i, _ in ranked(lex)[:DEPTH]}
    top = max((lex.get(i, 0) for i in cand), default=0) or 1
    return ranked({i: alpha * cos.get(i, floor) + (1 - alpha) * lex.get(i, 0) / top for i in cand})


def convex_minmax(vec, lex, alpha):
    def norm(lst):
        hi, lo = lst[0][1], lst[-1][1]
        return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in lst}
    lst = ranked(lex)[:DEPTH]
    nv, nl = norm(vec[:DEPTH]), (norm(lst) if lst else {})
    return ranked({i: alpha * nv.get(i, 0) + (1 - alpha) * nl.get(i, 0) for i in set(nv) | set(nl)})


def convex_zero(vec, lex, alpha):
    lst = ranked(lex)[:DEPTH]
    top = lst[0][1] if lst else 1
    nv, nl = dict(vec[:DEPTH]), {i: s / top for i, s in lst}
    return ranked({i: alpha * nv.get(i, 0) + (1 - alpha) * nl.get(i, 0) for i in set(nv) | set(nl)})


def rrf(vec, lex, c, w):
    s = collections.defaultdict(float)
    for r, (i, _) in enumerate(vec[:DEPTH]):
        s[i] += 1 / (c + r + 1)
    for r, (i, _) in enumerate(ranked(lex)[:DEPTH]):
        s[i] += w / (c + r + 1)
    return ranked(s)


def metrics(paths, rels):
    """recall@5 and reciprocal rank within 10, per document (kbindex eval's definitions)."""
    top, seen, first = paths[:10], set(), None
    for i, p in enumerate(top):
        if p in rels:
            first = first or i + 1
            if i < 5:
                seen.add(p)
    return len(seen) / len(rels), (1 / first if first else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--segment-json', required=True)
    ap.add_argument('--set', nargs=3, action='append', metavar=('NAME', 'TSV', 'HITS'), required=True)
    a = ap.parse_args()
    seg = json.load(open(a.segment_json))
    docs, chunks = seg['documents'], seg['chunks']
    path_of = [docs[c['document']]['path'] for c in chunks]
    key = {(path_of[i], c['line_start'], c['line_end'], ''.join(c['text'].split())[:60]): i for i, c in enumerate(chunks)}
    texts = [' '.join(c['heading_path']) + ' ' + c['text'] for c in chunks]
    sets = []
    for name, tsv, hits in a.set:
        qs = []
        for line in open(tsv, encoding='utf-8').read().splitlines()[1:]:
            _, q, rel = line.split('\t')
            qs.append((q, {r.split('#')[0].split(':')[0] for r in rel.split(',')}))
        vec = [[(key[(h['path'], h['line_start'], h['line_end'], ''.join(h['text'].split())[:60])], h['score']) for h in json.loads(l)['hits']]
               for l in open(hits, encoding='utf-8')]
        sets.append((name, qs, vec))

    def evaluate(rank_fn):
        out = []
        for name, qs, vec in sets:
            rows = [metrics([path_of[i] for i, _ in rank_fn(name, j, v)], rels) for j, ((_, rels), v) in enumerate(zip(qs, vec))]
            out.append((sum(r for r, _ in rows) / len(rows), sum(m for _, m in rows) / len(rows)))
        return out

    def show(label, res):
        print(f"{label:44s}" + ''.join(f"  {n} r@5 {r:.3f} MRR {m:.3f}" for (n, _, _), (r, m) in zip(sets, res)))

    show('vector', evaluate(lambda n, j, v: v))
    alphas = [x / 20 for x in range(10, 20)]
    lex_plain = None
    for label, stem, stop in [('words + identifier parts', False, False), ('+ stemming', True, False),
                              ('+ stop words', False, True), ('+ stemming + stop words', True, True)]:
        bm = BM25(texts, stem, stop)
        lex = {n: [bm.scores(q) for q, _ in qs] for n, qs, _ in sets}
        lex_plain = lex_plain or lex
        show(f'{label}: BM25 alone', evaluate(lambda n, j, v: ranked(lex[n][j])))
        best = max(alphas, key=lambda al: sum(evaluate(lambda n, j, v: convex_exact(v, lex[n][j], al))[0]))
        for al in alphas:
            show(f'  convex α {al:.2f}{"  <- best on " + sets[0][0] if al == best else ""}', evaluate(lambda n, j, v: convex_exact(v, lex[n][j], al)))
    lex = lex_plain
    for label, fn in [('min-max, missing 0', convex_minmax), ('cosine, BM25/max, missing 0', convex_zero)]:
        for al in alphas:
            show(f'{label} α {al:.2f}', evaluate(lambda n, j, v: fn(v, lex[n][j], al)))
    for c in (10, 20, 60, 100):
        for w in (0.5, 0.7, 1.0):
            show(f'rrf c {c} lexical weight {w}', evaluate(lambda n, j, v: rrf(v, lex[n][j], c, w)))


if __name__ == '__main__':
    main()
