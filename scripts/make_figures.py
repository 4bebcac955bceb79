"""Regenerate the README's simulator figures into docs/figures/ (seeded; about two minutes).

.venv/bin/python scripts/make_figures.py
"""

from __future__ import annotations

from pathlib import Path

from simulations.plotting import plot_trajectories
from simulations.runs import run_simulation

OUT = Path(__file__).resolve().parents[1] / "docs" / "figures"
POLICIES = (("replace", 0.0), ("keep-real", 0.1), ("accumulate", 0.0))


def compare(kind: str, metrics: tuple[str, ...], title: str, name: str, **kw: object) -> None:
    runs = {}
    for policy, beta in POLICIES:
        result = run_simulation(kind, policy=policy, beta=beta, **kw)  # type: ignore[arg-type]
        label = policy + (f" {beta:.0%}" if policy == "keep-real" else "")
        runs[label] = {m: result.trajectories[m] for m in metrics}
    first, *rest = runs
    path = plot_trajectories(
        runs[first],
        OUT / name,
        title=title,
        label=first,
        compare={label: runs[label] for label in rest},
    )
    print(path)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    compare(
        "gaussian",
        ("variance", "w2_squared"),
        "1-D Gaussian refitted on its own samples (M=100, unbiased): variance and W2^2",
        "gaussian_collapse.png",
        generations=300,
        samples=100,
        seeds=1000,
    )
    compare(
        "discrete",
        ("support_size", "tail_mass_lost"),
        "Zipf categorical law (100 categories, M=500): the tails go first",
        "discrete_tails.png",
        generations=100,
        samples=500,
        seeds=500,
    )
    compare(
        "lm",
        ("heldout_perplexity",),
        "Kneser-Ney trigram on BBC News: perplexity of held-out human text",
        "lm_perplexity.png",
        generations=6,
        samples=64,
        seeds=2,
    )


if __name__ == "__main__":
    main()
