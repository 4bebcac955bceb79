"""Render a `ReportData` as one self-contained HTML file and as a one-page PNG summary."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.figure import Figure

from service.report.figures import (
    DECISION_COLOURS,
    coverage_figure,
    draw_coverage,
    draw_fraction,
    draw_projection,
    draw_trajectories,
    fraction_figure,
    projection_figure,
    to_png,
    trajectories_figure,
)
from service.report.model import ReportData

TEMPLATES = Path(__file__).with_name("templates")
SUMMARY_SIZE = (16, 11)  # inches; at SUMMARY_DPI the PNG is 1600 x 1100 pixels
SUMMARY_DPI = 100


def _b64(fig: Figure) -> str:
    return base64.b64encode(to_png(fig)).decode("ascii")


def _figures(data: ReportData) -> dict[str, str | None]:
    e = data.synthetic_fraction
    p = data.projection
    series = [(s.label, s.trajectory) for s in data.forecast]
    return {
        "fraction": None
        if e is None
        else _b64(fraction_figure(e.point, e.low, e.high, e.level, data.synthetic_fraction_limit)),
        "coverage": _b64(coverage_figure(data.metrics)),
        "projection": None
        if p is None
        else _b64(projection_figure(p.reference_xy, p.candidate_xy, p.tail_mask, p.tail_covered)),
        "forecast": _b64(trajectories_figure(series, limit=data.forecast_limit))
        if series
        else None,
    }


def render_html(data: ReportData) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"])
    )
    # Missing modes first, then the most under-represented: what an auditor reads first.
    order = {"missing": 0, "under": 1, "over": 2, "ok": 3}
    modes = sorted(data.modes, key=lambda m: (order.get(m.status, 4), m.mode))
    return env.get_template("report.html.j2").render(
        r=data,
        figures=_figures(data),
        modes=modes,
        missing=[m for m in data.modes if m.status == "missing"],
        colours=DECISION_COLOURS,
    )


def write_html(data: ReportData, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(data), encoding="utf-8")
    return path


def summary_figure(data: ReportData) -> Figure:
    """One page: verdict and reasons on top, then fraction, coverage, projection and forecast."""
    fig = plt.figure(figsize=SUMMARY_SIZE)
    grid = fig.add_gridspec(3, 2, height_ratios=[0.75, 0.8, 1.6], hspace=0.45, wspace=0.25)
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    colour = DECISION_COLOURS.get(data.decision, "black")
    head.text(
        0, 0.95, f"Verdict: {data.decision}", fontsize=26, weight="bold", color=colour, va="top"
    )
    lines = [
        f"{data.candidate_name} ({data.candidate_size:,} docs) vs reference "
        f"{data.reference_name} ({data.reference_size:,} docs); sample {data.sample_size:,}; "
        f"{data.model}"
    ]
    if data.top_up_documents:
        lines.append(f"Add {data.top_up_documents:,} fresh human documents.")
    lines += ["- " + textwrap.shorten(r, 170) for r in data.reasons[:5]]
    head.text(0, 0.55, "\n".join(lines), fontsize=11, va="top", family="DejaVu Sans")

    ax = fig.add_subplot(grid[1, 0])
    e = data.synthetic_fraction
    if e is not None:
        draw_fraction(ax, e.point, e.low, e.high, e.level, data.synthetic_fraction_limit)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no synthetic-fraction estimate", ha="center")
    draw_coverage(fig.add_subplot(grid[1, 1]), data.metrics)
    ax = fig.add_subplot(grid[2, 0])
    if data.projection is not None:
        p = data.projection
        draw_projection(ax, p.reference_xy, p.candidate_xy, p.tail_mask, p.tail_covered)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no embeddings kept: no projection", ha="center")
    ax = fig.add_subplot(grid[2, 1])
    if data.forecast:
        draw_trajectories(
            ax, [(s.label, s.trajectory) for s in data.forecast], limit=data.forecast_limit
        )
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no forecast", ha="center")
    return fig


def write_png(data: ReportData, path: str | Path) -> Path:
    """The summary page as a PNG of exactly SUMMARY_SIZE x SUMMARY_DPI pixels."""
    path = Path(path)
    fig = summary_figure(data)
    fig.savefig(path, format="png", dpi=SUMMARY_DPI, facecolor="white")
    plt.close(fig)
    return path
