"""Figures of trajectories with their seed bands (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from simulations.forecast import Forecast
from simulations.results import Trajectory


def _panel(ax, traj: Trajectory, *, label: str, color: str) -> None:
    g = range(len(traj.bands))
    ax.plot(g, traj.means(), color=color, label=label)
    ax.fill_between(g, traj.lows(), traj.highs(), color=color, alpha=0.2, linewidth=0)
    if traj.theory is not None:
        ax.plot(g, traj.theory, "k--", linewidth=1, label=traj.theory_label or "theory")


def plot_trajectories(
    trajectories: dict[str, Trajectory],
    path: str | Path,
    *,
    title: str,
    compare: dict[str, dict[str, Trajectory]] | None = None,
    label: str = "this run",
) -> Path:
    """One panel per metric: mean over seeds with the central band; `compare` adds more runs
    (label -> trajectories) to the same panels."""
    names = list(trajectories)
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.8 * cols, 8.0), 3.4 * rows), squeeze=False)
    runs = {label: trajectories, **(compare or {})}
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for ax, name in zip(axes.flat, names, strict=False):
        for (label, trajs), color in zip(runs.items(), colors, strict=False):
            if name in trajs:
                _panel(ax, trajs[name], label=label, color=color)
        ax.set_title(trajectories[name].description, fontsize=8)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_forecast(forecast: Forecast, path: str | Path, *, title: str | None = None) -> Path:
    """The candidate's forecast beside the same plan started from fresh human data."""
    metrics = [
        m
        for m in ("tail_coverage", "recall", "precision", "divergence")
        if m in forecast.trajectories
    ]
    p = forecast.plan
    label = f"{p.policy}" + (f" beta={p.beta:g}" if p.policy == "keep-real" else "")
    return plot_trajectories(
        {m: forecast.trajectories[m] for m in metrics},
        path,
        title=title or f"forecast: {label}, {p.generations} generations x {p.samples} samples",
        compare={"fresh human start": {m: forecast.human[m] for m in metrics}},
        label="candidate",
    )
