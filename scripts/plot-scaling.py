#!/usr/bin/env python3
"""Plot `mnemo bench --scaling` JSON: time per step and peak memory against T, log-log, as SVG.

    mnemo bench --scaling --out docs/bench/scaling.json
    python3 scripts/plot-scaling.py docs/bench/scaling.json --out docs/img/attention-scaling.svg

Pure Python (no matplotlib needed), one SVG with two panels: ms per training step against the
sequence length T (left) and the step's peak RSS in MB (right), both axes logarithmic, one line
per mechanism. Skipped points are left out; the legend names each mechanism's skipped lengths.
Grey guides of slope 2 (dashed, growth as T^2) and slope 1 (dotted, as T) are drawn in each
panel.
"""
import argparse
import json
import math
import sys

COLORS = {"softmax": "#d62728", "linear": "#1f77b4", "performer": "#2ca02c", "sparse": "#9467bd"}
OTHER = ["#ff7f0e", "#8c564b", "#17becf"]


def read(path):
    with open(path) as f:
        doc = json.load(f)
    points = doc.get("points")
    if not isinstance(points, list):
        sys.exit(f"{path}: no 'points' list (is it `mnemo bench --scaling` output?)")
    series, skipped = {}, {}
    for p in points:
        name, t = p.get("mechanism"), p.get("seq_len")
        if name is None or t is None:
            print(f"{path}: point without mechanism/seq_len skipped: {p}", file=sys.stderr)
            continue
        series.setdefault(name, [])
        skipped.setdefault(name, [])
        if "skipped" in p:
            skipped[name].append(t)
        elif isinstance(p.get("ms_per_step"), (int, float)) and isinstance(p.get("peak_rss_mb"), (int, float)):
            series[name].append((t, float(p["ms_per_step"]), float(p["peak_rss_mb"])))
    if not any(series.values()):
        sys.exit(f"{path}: no measured points")
    return doc, series, skipped


def decades(lo, hi):
    """Tick values 1, 2, 5 × 10^k covering [lo, hi]."""
    ticks = []
    for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** k
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def panel(out, x_off, w, h, series, skipped, column, ylabel, xs_all):
    left, right, top, bottom = 70, 15, 40, 55
    x0, x1 = min(xs_all), max(xs_all)
    ys = [p[column] for pts in series.values() for p in pts]
    y0, y1 = min(ys) / 1.3, max(ys) * 1.3
    lx0, lx1 = math.log(x0 / 1.15), math.log(x1 * 1.15)
    ly0, ly1 = math.log(y0), math.log(y1)
    sx = lambda x: x_off + left + (math.log(x) - lx0) / (lx1 - lx0) * (w - left - right)
    sy = lambda y: top + (1 - (math.log(y) - ly0) / (ly1 - ly0)) * (h - top - bottom)
    out.append(f'<rect x="{x_off + left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" stroke="#999"/>')
    for y in decades(y0, y1):
        out.append(f'<line x1="{x_off + left}" x2="{x_off + w - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x_off + left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in sorted(set(xs_all)):
        out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{h - bottom}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{h - bottom + 16}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{x_off + (left + w - right) / 2}" y="{h - bottom + 36}" text-anchor="middle">sequence length T (log)</text>')
    out.append(f'<text x="{x_off + 16}" y="{(top + h - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 {x_off + 16} {(top + h - bottom) / 2})">{ylabel} (log)</text>')
    # Guides of slope 2 (dashed, ∝ T²) and 1 (dotted, ∝ T) through the middle of the panel,
    # clipped to its y range.
    xm, ym = math.sqrt(x0 * x1), math.sqrt(y0 * y1)
    for slope, dash, label in ((2, "5,4", "∝ T²"), (1, "2,3", "∝ T")):
        ga, gb = x0, x1
        ya, yb = ym * (ga / xm) ** slope, ym * (gb / xm) ** slope
        if ya < y0:
            ga, ya = xm * (y0 / ym) ** (1 / slope), y0
        if yb > y1:
            gb, yb = xm * (y1 / ym) ** (1 / slope), y1
        out.append(f'<line x1="{sx(ga):.1f}" y1="{sy(ya):.1f}" x2="{sx(gb):.1f}" y2="{sy(yb):.1f}" '
                   f'stroke="#aaa" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{sx(gb) - 4:.1f}" y="{sy(yb) + 14:.1f}" text-anchor="end" fill="#888">{label}</text>')
    for k, (name, pts) in enumerate(series.items()):
        color = COLORS.get(name, OTHER[k % len(OTHER)])
        pts = sorted(pts)
        if not pts:
            continue
        line = " ".join(f"{sx(p[0]):.1f},{sy(p[column]):.1f}" for p in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>')
        for p in pts:
            out.append(f'<circle cx="{sx(p[0]):.1f}" cy="{sy(p[column]):.1f}" r="3" fill="{color}"/>')
        label = name + (f" (skipped T = {', '.join(map(str, skipped[name]))})" if skipped.get(name) else "")
        out.append(f'<text x="{x_off + left + 8}" y="{top + 16 * (k + 1)}" fill="{color}">{label}</text>')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("json", help="the JSON written by `mnemo bench --scaling --out`")
    parser.add_argument("--out", required=True, help="the SVG file to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args()

    doc, series, skipped = read(args.json)
    xs_all = [t for pts in series.values() for t, *_ in pts] + [t for ts in skipped.values() for t in ts]
    pw, h = 480, 380
    w = 2 * pw
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    cfg = doc.get("config", {})
    title = args.title or (
        f"One training step vs T: {cfg.get('n_layers', '?')} layers, D {cfg.get('d_model', '?')}, "
        f"{cfg.get('n_heads', '?')} heads, batch {cfg.get('batch', '?')} ({doc.get('cpu', '?')})")
    out.append(f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>')
    panel(out, 0, pw, h, series, skipped, 1, "ms per step", xs_all)
    panel(out, pw, pw, h, series, skipped, 2, "peak RSS MB", xs_all)
    out.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
