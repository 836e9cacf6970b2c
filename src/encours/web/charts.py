"""Charts as SVG, drawn on the server: aging bars, 12-month trend lines, limit gauge.

No JavaScript: each chart is a small inline <svg> with a <title> (read by screen readers)
and its values written next to the marks, so it reads at a glance and prints.
Colours come from CSS classes (style.css), not inline styles (the CSP forbids them).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def _svg(width: int, height: int, title: str, body: list[str], css: str = "chart") -> Markup:
    head = (
        f'<svg class="{css}" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def aging_bars(items: Sequence[tuple[str, int, str]], title: str) -> Markup:
    """Horizontal bars: (label, value, formatted value) per bucket, from not due to oldest."""
    row_h, label_w, value_w, width = 26, 110, 130, 560
    height = row_h * len(items) + 8
    top = max((v for _l, v, _f in items), default=0) or 1
    bar_w = width - label_w - value_w - 10
    body = []
    for i, (label, value, shown) in enumerate(items):
        y = 4 + i * row_h
        w = max(0.0, value / top * bar_w)
        body.append(
            f'<text x="{label_w - 8}" y="{y + 17}" class="lbl" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
            f'class="bar b{min(i, 5)}"><title>{escape(label)}: {escape(shown)}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" class="val">{escape(shown)}</text>'
        )
    return _svg(width, height, title, body)


def trend_line(
    points: Sequence[tuple[str, float | None, str]], title: str, width: int = 300
) -> Markup:
    """A line over (label, value, formatted) points, oldest first; gaps where value is None."""
    height, pad_l, pad_r, pad_t, pad_b = 110, 8, 8, 14, 22
    values = [v for _l, v, _f in points if v is not None]
    if not values:
        return _svg(width, height, title, [
            f'<text x="{width / 2}" y="{height / 2}" class="lbl" text-anchor="middle">—</text>'
        ])  # fmt: skip
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1
    n = len(points)
    step = (width - pad_l - pad_r) / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        y = pad_t + (high - v) / (high - low) * (height - pad_t - pad_b)
        return pad_l + i * step, y

    body = [f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{height - pad_b}" '
            f'y2="{height - pad_b}" class="axis"/>']  # fmt: skip
    path, pen_down = [], False
    for i, (_label, v, _shown) in enumerate(points):
        if v is None:
            pen_down = False
            continue
        x, y = xy(i, v)
        path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    body.append(f'<path d="{" ".join(path)}" class="line"/>')
    for i, (label, v, shown) in enumerate(points):
        if v is None:
            continue
        x, y = xy(i, v)
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="dot">'
                    f"<title>{escape(label)}: {escape(shown)}</title></circle>")  # fmt: skip
    first, last = points[0][0], points[-1][0]
    body.append(f'<text x="{pad_l}" y="{height - 6}" class="tick">{escape(first)}</text>')
    body.append(f'<text x="{width - pad_r}" y="{height - 6}" class="tick" text-anchor="end">'
                f"{escape(last)}</text>")  # fmt: skip
    last_point = next(((i, v, s) for i, (_l, v, s) in reversed(list(enumerate(points)))
                       if v is not None))  # fmt: skip
    x, y = xy(last_point[0], last_point[1])
    body.append(f'<text x="{min(x, width - 4):.1f}" y="{max(y - 6, 10):.1f}" class="val" '
                f'text-anchor="end">{escape(last_point[2])}</text>')  # fmt: skip
    return _svg(width, height, title, body, css="chart trend")


def limit_gauge(used: float | None, title: str, caption: str) -> Markup:
    """Exposure against the credit limit: a bar to 150 %, a mark at 100 %."""
    width, height, pad = 420, 56, 10
    span = width - 2 * pad
    body = [f'<rect x="{pad}" y="12" width="{span}" height="16" class="gauge-bg"/>']
    if used is not None:
        shown = min(max(used, 0.0), 1.5)
        css = "gauge-ok" if used <= 0.8 else ("gauge-warn" if used <= 1.0 else "gauge-over")
        body.append(f'<rect x="{pad}" y="12" width="{shown / 1.5 * span:.1f}" height="16" '
                    f'class="{css}"/>')  # fmt: skip
    mark = pad + span / 1.5
    body.append(f'<line x1="{mark:.1f}" x2="{mark:.1f}" y1="6" y2="34" class="limit-mark"/>')
    body.append(f'<text x="{pad}" y="50" class="lbl">{escape(caption)}</text>')
    return _svg(width, height, title, body, css="chart gauge")
