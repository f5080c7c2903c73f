"""SVG charts drawn at build time (no JavaScript, no external library): papers per quarter, rates with CIs.

Labels are escaped with :func:`tools.site.util.esc`; the SVG is inlined in raw HTML blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

from tools.site.util import CATEGORIES, CATEGORY_COLORS, CATEGORY_TITLES, esc

_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def papers_per_quarter_svg(counts: dict[tuple[int, int], dict[str, int]], *, title: str) -> str:
    """A stacked bar chart: one bar per quarter (every quarter between the first and last), one colour per
    category. ``counts`` maps (year, quarter) -> {category: n}."""
    if not counts:
        return '<p class="atlas-muted">No papers yet.</p>'
    first, last = min(counts), max(counts)
    quarters: list[tuple[int, int]] = []
    y, q = first
    while (y, q) <= last:
        quarters.append((y, q))
        y, q = (y, q + 1) if q < 4 else (y + 1, 1)
    cats = [c for c in CATEGORIES if any(counts.get(k, {}).get(c) for k in quarters)]
    peak = max(sum(counts.get(k, {}).values()) for k in quarters) or 1
    step = _nice_step(peak)
    top = step * -(-peak // step)
    left, right, top_pad, bottom = 44, 12, 30, 46
    bar_w = max(4.0, min(22.0, 760 / len(quarters)))
    width = max(560.0, left + right + bar_w * len(quarters))
    height = 260
    plot_h = height - top_pad - bottom
    parts = [
        f'<svg class="atlas-chart" role="img" aria-label="{esc(title)}" viewBox="0 0 {width:.0f} {height}" '
        f'width="100%" style="max-width:{width:.0f}px" xmlns="http://www.w3.org/2000/svg" {_FONT} font-size="11">',
        f"<title>{esc(title)}</title>",
    ]
    for tick in range(0, top + 1, step):
        ty = top_pad + plot_h - plot_h * tick / top
        parts.append(
            f'<line x1="{left}" x2="{width - right:.0f}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#ccc" stroke-width="0.5"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="currentColor">{tick}</text>'
        )
    for i, key in enumerate(quarters):
        x = left + i * bar_w
        base = top_pad + plot_h
        by_cat = counts.get(key, {})
        for cat in cats:
            n = by_cat.get(cat, 0)
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{base:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{CATEGORY_COLORS[cat]}"><title>{key[0]} Q{key[1]} · {esc(CATEGORY_TITLES[cat])}: {n}</title></rect>'
            )
        if key[1] == 1:
            parts.append(
                f'<text x="{x + 1:.1f}" y="{top_pad + plot_h + 16}" fill="currentColor">{key[0]}</text>'
            )
    lx = left
    for cat in cats:
        parts.append(
            f'<rect x="{lx}" y="{height - 16}" width="10" height="10" fill="{CATEGORY_COLORS[cat]}"/>'
            f'<text x="{lx + 14}" y="{height - 7}" fill="currentColor">{esc(CATEGORY_TITLES[cat])}</text>'
        )
        lx += 16 + 7 * len(CATEGORY_TITLES[cat])
    parts.append(f'<text x="{left}" y="14" fill="currentColor" font-weight="600">{esc(title)}</text></svg>')
    return "".join(parts)


def _nice_step(peak: int) -> int:
    """A round grid step giving about four grid lines up to ``peak``."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if peak / step <= 5:
            return step
    return 10000


def rate_bars_svg(rows: Sequence[tuple[str, float, float, float]], *, title: str) -> str:
    """Horizontal bars of rates in [0, 1] with 95% CI whiskers; ``rows`` are (label, value, low, high)."""
    if not rows:
        return ""
    label_w, plot_w, row_h, top, bottom = 230, 420, 24, 28, 26
    width = label_w + plot_w + 60
    height = top + row_h * len(rows) + bottom
    parts = [
        f'<svg class="atlas-chart" role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg" {_FONT} font-size="11">',
        f"<title>{esc(title)}</title>",
        f'<text x="0" y="14" fill="currentColor" font-weight="600">{esc(title)}</text>',
    ]
    for pct in (0, 25, 50, 75, 100):
        x = label_w + plot_w * pct / 100
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - bottom + 4}" stroke="#ccc" stroke-width="0.5"/>'
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" fill="currentColor">{pct}%</text>'
        )
    for i, (label, value, low, high) in enumerate(rows):
        y = top + i * row_h
        short = label if len(label) <= 38 else label[:37] + "…"
        w = plot_w * _clamp(value)
        x_lo, x_hi = label_w + plot_w * _clamp(low), label_w + plot_w * _clamp(high)
        mid = y + row_h / 2
        parts.append(
            f'<text x="{label_w - 8}" y="{mid + 4:.1f}" text-anchor="end" fill="currentColor">{esc(short)}</text>'
            f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="{row_h - 10}" fill="#3f6ec6" opacity="0.85">'
            f"<title>{esc(label)}: {100 * value:.1f}% (95% CI {100 * low:.1f}–{100 * high:.1f}%)</title></rect>"
            f'<line x1="{x_lo:.1f}" x2="{x_hi:.1f}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="currentColor" stroke-width="1.4"/>'
            f'<line x1="{x_lo:.1f}" x2="{x_lo:.1f}" y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" stroke="currentColor" stroke-width="1.4"/>'
            f'<line x1="{x_hi:.1f}" x2="{x_hi:.1f}" y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" stroke="currentColor" stroke-width="1.4"/>'
            f'<text x="{label_w + plot_w + 8}" y="{mid + 4:.1f}" fill="currentColor">{100 * value:.1f}%</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _clamp(v: float) -> float:
    return min(1.0, max(0.0, float(v)))
