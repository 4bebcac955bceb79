"""matplotlib figures of an audit, each drawn from numbers the audit already computed.

Nothing here estimates anything: the one computation is the 2-D display projection of the
embeddings (`project_2d`, a PCA fitted on the reference), which only decides where dots go.
Figures are returned as `Figure` objects; `to_png` turns one into bytes for embedding in the HTML
report (as base64) or for the PNG summary.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers, CI or in the service

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from detectors.results import MetricComparison
from simulations.results import Trajectory

DECISION_COLOURS = {
    "keep": "#1a7f37",
    "top-up": "#b35900",
    "reject": "#c62828",
    "inconclusive": "#6e40c9",  # purple: no judgement, neither a pass nor a failure
}
REFERENCE_COLOUR, CANDIDATE_COLOUR, TAIL_COLOUR = "#8c8c8c", "#1f77b4", "#d62728"
PLAN_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
MAX_POINTS = 2500  # per side in the projection: enough to see the shape, small in the HTML


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buffer.getvalue()


def project_2d(
    reference: np.ndarray, candidate: np.ndarray, *, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Both sets on the reference's first two principal axes (a display projection only)."""
    rng = np.random.default_rng(random_state)
    fit_on = reference
    if len(reference) > 20_000:  # the axes of a large reference are stable on a sample
        fit_on = reference[rng.choice(len(reference), 20_000, replace=False)]
    centre = fit_on.mean(axis=0)
    _, _, vt = np.linalg.svd(fit_on - centre, full_matrices=False)
    axes = vt[:2].T
    return (reference - centre) @ axes, (candidate - centre) @ axes


def _thin(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, MAX_POINTS, replace=False)) if n > MAX_POINTS else np.arange(n)


def draw_projection(
    ax: Axes,
    reference_xy: np.ndarray,
    candidate_xy: np.ndarray,
    tail_mask: np.ndarray,
    tail_covered: np.ndarray | None = None,
    *,
    random_state: int = 0,
) -> None:
    """Reference points grey, tail reference points red (hollow if the candidate misses them)."""
    rng = np.random.default_rng(random_state)
    keep = _thin(len(reference_xy), rng)
    ref, tail = reference_xy[keep], tail_mask[keep]
    ax.scatter(
        ref[~tail][:, 0],
        ref[~tail][:, 1],
        s=6,
        c=REFERENCE_COLOUR,
        alpha=0.35,
        lw=0,
        label="reference",
    )
    cand = candidate_xy[_thin(len(candidate_xy), rng)]
    ax.scatter(cand[:, 0], cand[:, 1], s=8, c=CANDIDATE_COLOUR, alpha=0.55, lw=0, label="candidate")
    if tail_covered is None:
        ax.scatter(
            ref[tail][:, 0],
            ref[tail][:, 1],
            s=18,
            c=TAIL_COLOUR,
            marker="^",
            lw=0,
            label="reference tail",
        )
    else:
        hit = tail_covered[keep][tail]
        tail_pts = ref[tail]
        ax.scatter(
            tail_pts[hit][:, 0],
            tail_pts[hit][:, 1],
            s=18,
            c=TAIL_COLOUR,
            marker="^",
            lw=0,
            label="tail, covered",
        )
        ax.scatter(
            tail_pts[~hit][:, 0],
            tail_pts[~hit][:, 1],
            s=22,
            facecolors="none",
            edgecolors=TAIL_COLOUR,
            marker="^",
            lw=0.9,
            label="tail, missed",
        )
    ax.set_xlabel("PC 1 of the reference")
    ax.set_ylabel("PC 2")
    ax.set_title("Embeddings: reference vs candidate (PCA)")
    ax.legend(loc="best", fontsize=8, markerscale=1.5, framealpha=0.8)


def projection_figure(
    reference_xy: np.ndarray,
    candidate_xy: np.ndarray,
    tail_mask: np.ndarray,
    tail_covered: np.ndarray | None = None,
) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 5.5))
    draw_projection(ax, reference_xy, candidate_xy, tail_mask, tail_covered)
    return fig


def draw_fraction(
    ax: Axes, point: float, low: float, high: float, level: float, limit: float | None
) -> None:
    """The synthetic-fraction estimate with its interval on [0, 1], beside the policy's limit."""
    ax.errorbar(
        [point],
        [0],
        xerr=[[max(point - low, 0)], [max(high - point, 0)]],
        fmt="o",
        color="black",
        capsize=6,
        ms=8,
        lw=2,
    )
    if limit is not None:
        ax.axvline(limit, color=DECISION_COLOURS["reject"], ls="--", lw=1.5, label="policy limit")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.set_xlabel(f"estimated synthetic fraction ({level:.0%} interval)")
    ax.set_title(f"Synthetic fraction {point:.2f} [{low:.2f}, {high:.2f}]")


def fraction_figure(
    point: float, low: float, high: float, level: float, limit: float | None
) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 1.9))
    draw_fraction(ax, point, low, high, level, limit)
    return fig


def draw_coverage(ax: Axes, metrics: Sequence[tuple[str, MetricComparison]]) -> None:
    """Each metric as a ratio to the size-matched human baseline, with its bootstrap interval."""
    names = [name for name, _ in metrics]
    y = np.arange(len(metrics))[::-1]
    ratios = np.array([m.ratio for _, m in metrics], dtype=float)
    lows = np.array([m.low for _, m in metrics], dtype=float)
    highs = np.array([m.high for _, m in metrics], dtype=float)
    err = np.vstack([np.clip(ratios - lows, 0, None), np.clip(highs - ratios, 0, None)])
    colours = [TAIL_COLOUR if h < 1 else CANDIDATE_COLOUR for h in highs]
    ax.barh(y, ratios, color=colours, alpha=0.75, height=0.6)
    ax.errorbar(ratios, y, xerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=4)
    ax.axvline(1.0, color="black", lw=1, ls=":", label="human baseline")
    ax.set_yticks(y, names)
    level = metrics[0][1].level if metrics else 0.9
    ax.set_xlabel(f"candidate / human baseline ({level:.0%} interval)")
    ax.set_title("Coverage vs a size-matched human sample")
    ax.legend(loc="lower right", fontsize=8)


def coverage_figure(metrics: Sequence[tuple[str, MetricComparison]]) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    draw_coverage(ax, metrics)
    return fig


def draw_trajectories(
    ax: Axes,
    series: Sequence[tuple[str, Trajectory]],
    *,
    limit: float | None = None,
    ylabel: str | None = None,
) -> None:
    """One line per plan (mean over chains) with its band (the chains' central interval)."""
    for i, (label, traj) in enumerate(series):
        colour = PLAN_COLOURS[i % len(PLAN_COLOURS)]
        g = np.arange(len(traj.bands))
        ax.plot(g, traj.means(), color=colour, marker="o", ms=3, label=label)
        ax.fill_between(g, traj.lows(), traj.highs(), color=colour, alpha=0.2, lw=0)
    if limit is not None:
        ax.axhline(limit, color=DECISION_COLOURS["reject"], ls="--", lw=1.2, label="policy limit")
    if series:
        first = series[0][1]
        level = first.bands[0].level if first.bands else 0.9
        ax.set_ylabel(ylabel or first.metric.replace("_", " "))
        ax.set_title(f"Forecast: {first.metric.replace('_', ' ')} ({level:.0%} band over chains)")
    ax.set_xlabel("generation")
    ax.legend(loc="best", fontsize=8)


def trajectories_figure(
    series: Sequence[tuple[str, Trajectory]], *, limit: float | None = None
) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    draw_trajectories(ax, series, limit=limit)
    return fig
