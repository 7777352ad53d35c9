#!/usr/bin/env python3
"""Plot one field of metrics.jsonl against the step, for several runs, as an SVG line chart.

    python3 scripts/plot-metrics.py --field success --split train \
        --out docs/rl/tmaze-success.svg runs/rl-tmaze/feedback runs/rl-tmaze/transformer

Pure Python (no matplotlib needed). Each RUN is a run directory (its metrics.jsonl is read)
or a metrics.jsonl path; lines that do not parse are skipped with a warning naming the line.
"""
import argparse
import json
import os
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def read(path, split, field):
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    points = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                print(f"{path}:{number}: not a JSON line, skipped", file=sys.stderr)
                continue
            if record.get("split") == split and isinstance(record.get(field), (int, float)):
                points.append((record["step"], float(record[field])))
    if not points:
        sys.exit(f"{path}: no '{split}' lines with a numeric '{field}'")
    return points


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories or metrics.jsonl files")
    parser.add_argument("--field", required=True, help="e.g. success, return, loss, bpc")
    parser.add_argument("--split", default="train", help="train (default), valid, test")
    parser.add_argument("--out", required=True, help="the SVG file to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args()

    series = [(run.rstrip("/").split("/")[-1] or run, read(run, args.split, args.field)) for run in args.runs]
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys + [0.0]), max(ys)
    if y1 == y0:
        y1 = y0 + 1.0
    w, h, left, right, top, bottom = 640, 360, 60, 20, 40, 50
    sx = lambda x: left + (x - x0) / max(x1 - x0, 1) * (w - left - right)
    sy = lambda y: top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    title = args.title or f"{args.field} ({args.split})"
    out.append(f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>')
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for i in range(5):
        x = x0 + (x1 - x0) * i / 4
        out.append(f'<text x="{sx(x):.1f}" y="{h - bottom + 18}" text-anchor="middle">{x:.0f}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle">step</text>')
    for k, (name, pts) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        out.append(f'<text x="{left + 10}" y="{top + 16 * (k + 1)}" fill="{color}">{name}</text>')
    out.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
