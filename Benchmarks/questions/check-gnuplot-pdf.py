#!/usr/bin/env python3
"""Checks gnuplot-pdf.tsv against the manual: every line has 3 fields, ids are unique, every
location is gnuplot.pdf:PN or gnuplot.pdf:PN-PM within the PDF's pages, and on the pages of each
location a term the answer needs occurs (the CHECKS below, one regex per location, in order).
Page k is the text before the k-th form feed of `pdftotext` (physical pages, from 1).

    python3 Benchmarks/questions/check-gnuplot-pdf.py [CORPUS-FOLDER]

CORPUS-FOLDER defaults to Benchmarks/.cache/corpora/gnuplot-pdf (Benchmarks/corpora/pdf-corpus.sh).
Standard library only; needs pdftotext (poppler-utils). Exit status 1 on any problem.
"""
import os
import re
import subprocess
import sys

CHECKS = {
'csv-commas':[r'separator',r'separator comma'],
'vertical-error-bars':[r'ydelta',r'ydelta'],
'two-plots-side-by-side':[r'multiplot layout'],
'save-as-png':[r'set output',r'png'],
'image-pixel-size':[r'size <',r'size'],
'log-scale-y':[r'set logscale y'],

'fit-quadratic':[r'fit f\(x\)|least-squares'],
'fit-parameter-errors':[r'errorvariables',r'_err|errorvariables'],
'fit-singular-matrix':[r'singular matrix|starting values'],
'grouped-bar-chart':[r'clustered'],
'count-histogram':[r'bins',r'frequency'],
'dates-on-x-axis':[r'set xdata time',r'timefmt',r'xdata time'],
'month-year-tick-labels':[r'%b|%B',r'set format|xtics time'],
'legend-outside':[r'outside',r'outside|margin'],
'leave-curve-out-of-legend':[r'notitle',r'notitle'],
'tilt-tick-labels':[r'rotate by'],
'second-y-axis':[r'x1y2',r'y2tics'],
'heat-map':[r'heat map',r'heat map'],
'contour-lines':[r'set contour',r'cntrparam'],
'arrow-annotation':[r'set arrow'],
'text-at-coordinate':[r'set label'],
'thick-red-line':[r'linewidth|linetype',r'linewidth'],
'dashed-line':[r'dashtype',r'dashtype'],
'see-through-fill':[r'transparent'],
'greek-and-subscripts':[r'Symbol|subscript|superscript'],
'loop-over-files':[r'plot for',r'iteration|for \['],
'script-arguments':[r'-c scriptfile',r'ARG1|ARGV'],
'preprocess-with-awk':[r'awk'],
'every-tenth-point':[r'every'],
'junk-lines-at-top':[r'skip'],
'header-row-as-legend':[r'columnhead',r'columnhead'],
'missing-values':[r'missing'],
'smooth-noisy-data':[r'csplines|acsplines'],
'mean-and-standard-deviation':[r'STATS_mean|mean'],
'window-closes-at-exit':[r'persist',r'persist',r'pause'],
'animated-gif':[r'animate'],
'latex-same-fonts':[r'epslatex|LaTeX',r'cairolatex'],
'svg-output':[r'Scalable Vector Graphics|svg'],
'polar-curve':[r'set polar',r'set polar'],
'circle-looks-like-ellipse':[r'ratio'],
'integer-division':[r'5/2'],
'random-numbers':[r'rand\('],
'box-and-whisker':[r'boxplot',r'boxplot'],
'label-each-point':[r'with labels|labels style'],
'data-inside-script':[r'EOD|datablock',r'inline'],
'function-values-to-file':[r'set table'],
'save-settings':[r'save'],
'surface-from-scattered-points':[r'dgrid3d',r'dgrid3d'],
'hide-lines-behind-surface':[r'hidden3d'],
'zoom-with-mouse':[r'[Zz]oom'],
'tick-every-half':[r'<incr>'],
'axis-number-format':[r'set format'],
}

here = os.path.dirname(os.path.abspath(__file__))
corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", ".cache", "corpora", "gnuplot-pdf")
text = subprocess.run(["pdftotext", "-enc", "UTF-8", os.path.join(corpus, "gnuplot.pdf"), "-"],
                      check=True, capture_output=True).stdout.decode("utf-8")
pages = text.split("\f")[:-1]  # pdftotext ends every page, the last one too, with a form feed
lines = open(os.path.join(here, "gnuplot-pdf.tsv"), encoding="utf-8").read().splitlines()
problems = 0


def problem(msg):
    global problems
    problems += 1
    print(msg)


if lines[0] != "id\tquestion\trelevant_paths":
    problem("line 1: not the header")
ids = set()
for n, line in enumerate(lines[1:], start=2):
    fields = line.split("\t")
    if len(fields) != 3:
        problem(f"line {n}: {len(fields)} fields")
        continue
    qid, question, relevant = fields
    if qid in ids:
        problem(f"line {n}: id {qid} again")
    ids.add(qid)
    locations = relevant.split(",")
    checks = CHECKS.get(qid, [])
    if len(checks) != len(locations):
        problem(f"line {n}: {qid}: {len(locations)} locations but {len(checks)} checks")
        continue
    for loc, rx in zip(locations, checks):
        m = re.fullmatch(r"gnuplot\.pdf:P(\d+)(?:-P(\d+))?", loc)
        if not m:
            problem(f"line {n}: {qid}: '{loc}' is not gnuplot.pdf:PN or gnuplot.pdf:PN-PM")
            continue
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 1 <= a <= b <= len(pages):
            problem(f"line {n}: {qid}: {loc} is outside pages 1-{len(pages)}")
            continue
        if not any(re.search(rx, pages[p - 1].replace("\n", " "), re.I) for p in range(a, b + 1)):
            problem(f"line {n}: {qid}: /{rx}/ is on none of the pages {loc}")
print(f"{len(ids)} questions, {len(pages)} pages, {problems} problem(s)")
sys.exit(1 if problems else 0)
