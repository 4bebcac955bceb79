"""`collapse-guard simulate` (the collapse simulator) and `collapse-guard forecast` (what-if)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

Kind = Literal["gaussian", "discrete", "gmm", "lm"]
PolicyName = Literal["replace", "keep-real", "accumulate"]


def register(app: typer.Typer) -> None:
    app.command()(simulate)
    app.command()(forecast)


def simulate(
    kind: Annotated[Kind, typer.Argument(help="gaussian | discrete | gmm | lm (n-gram on BBC).")],
    generations: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    samples: Annotated[int, typer.Option(min=2, help="Samples per generation (M).")] = 100,
    policy: Annotated[
        PolicyName, typer.Option(help="replace | keep-real | accumulate")
    ] = "replace",
    beta: Annotated[
        float, typer.Option(min=0, max=1, help="Fresh original share (keep-real).")
    ] = 0.0,
    seeds: Annotated[int, typer.Option(min=2, help="Independent chains.")] = 100,
    estimator: Annotated[str, typer.Option(help="gaussian: unbiased | mle")] = "unbiased",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the trajectories.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet")] = False,
) -> None:
    """Run the generational-collapse recursion and print each metric's first and last bands."""
    from detectors.errors import CollapseGuardError
    from service.cli import console, fail
    from service.render import progress_bar
    from simulations.runs import run_simulation

    try:
        with progress_bar(console, f"simulating {kind}", quiet=quiet) as update:
            result = run_simulation(
                kind,
                generations=generations,
                samples=samples,
                policy=policy,
                beta=beta,
                seeds=seeds,
                estimator=estimator,
                random_state=seed,
                progress=update,
            )
    except CollapseGuardError as exc:
        raise fail(str(exc)) from None
    if not quiet:
        from rich.table import Table

        table = Table(
            title=f"{kind}: {policy}"
            + (f" beta={beta:g}" if policy == "keep-real" else "")
            + f", {generations} generations, {seeds} seeds"
        )
        for col in (
            "metric",
            "generation 0",
            f"generation {generations}",
            "90% band (last)",
            "theory (last)",
        ):
            table.add_column(col)
        for name, traj in result.trajectories.items():
            first, last = traj.bands[0], traj.bands[-1]
            theory = "" if traj.theory is None else f"{traj.theory[-1]:.4g}"
            table.add_row(
                name,
                _num(first.mean, ".4g"),
                _num(last.mean, ".4g"),
                f"[{_num(last.low, '.4g')}, {_num(last.high, '.4g')}]",
                theory,
            )
        console.print(table)
        console.print(f"{result.elapsed_seconds:.1f} s")
    _write(result, json_out, plot, f"{kind} collapse, {policy}")


def forecast(
    synthetic_fraction: Annotated[float, typer.Option(min=0, max=1)],
    tail_coverage: Annotated[float, typer.Option(min=0, max=1.5, help="Audited ratio vs human.")],
    generations: Annotated[int, typer.Option(min=1, max=100)] = 5,
    samples: Annotated[int, typer.Option(min=50, help="Documents per generation.")] = 1000,
    policy: Annotated[PolicyName, typer.Option()] = "replace",
    beta: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
    seeds: Annotated[int, typer.Option(min=2, max=256)] = 32,
    target: Annotated[
        float | None, typer.Option(help="Also find the top-up for this relative tail coverage.")
    ] = None,
    plot: Annotated[Path | None, typer.Option()] = None,
    json_out: Annotated[Path | None, typer.Option("--json")] = None,
    quiet: Annotated[bool, typer.Option("--quiet")] = False,
) -> None:
    """What-if forecast from two audit numbers (no embeddings): trajectories with seed bands."""
    from pydantic import ValidationError

    from detectors.errors import CollapseGuardError
    from service.cli import console, fail
    from simulations.forecast import Plan, what_if
    from simulations.top_up import what_if_top_up

    try:
        plan = Plan(generations=generations, samples=samples, policy=policy, beta=beta, seeds=seeds)
        result = what_if(
            synthetic_fraction=synthetic_fraction, tail_coverage=tail_coverage, plan=plan
        )
        top = (
            None
            if target is None
            else what_if_top_up(
                synthetic_fraction=synthetic_fraction,
                tail_coverage=tail_coverage,
                plan=plan,
                target=target,
            )
        )
    except ValidationError as exc:
        raise fail("; ".join(e["msg"] for e in exc.errors())) from None
    except CollapseGuardError as exc:
        raise fail(str(exc)) from None
    if not quiet:
        from rich.table import Table

        table = Table(
            title=f"what-if forecast: {policy}"
            + (f" beta={beta:g}" if policy == "keep-real" else "")
        )
        for col in (
            "generation",
            "tail coverage [90%]",
            "human start",
            "recall",
            "precision",
            "divergence",
        ):
            table.add_column(col)
        t = result.trajectories
        for g, band in enumerate(t["tail_coverage"].bands):
            table.add_row(
                str(g),
                f"{_num(band.mean)} [{_num(band.low)}, {_num(band.high)}]",
                _num(result.human["tail_coverage"].bands[g].mean),
                _num(t["recall"].bands[g].mean),
                _num(t["precision"].bands[g].mean),
                _num(t["divergence"].bands[g].mean),
            )
        console.print(table)
        console.print(f"final tail coverage vs a fresh human start: {result.relative_final():.2f}")
        if top is not None:
            verdict = "feasible" if top.feasible else "NOT feasible within beta <= 0.5"
            console.print(
                f"top-up for {target:.2f}: beta {top.beta:.3f} = {top.documents_per_generation} "
                f"fresh human documents per generation ({verdict}; reaches "
                f"{top.achieved_relative:.2f})"
            )
    _write(result, json_out, None, "")
    if plot is not None:
        from simulations.plotting import plot_forecast

        _guard_write(lambda: plot_forecast(result, plot), plot)


def _guard_write(write, path: Path) -> None:
    from service.cli import fail

    try:
        write()
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None


def _write(result, json_out: Path | None, plot: Path | None, title: str) -> None:
    if json_out is not None:
        _guard_write(lambda: json_out.write_text(result.model_dump_json(indent=2)), json_out)
    if plot is not None:
        from simulations.plotting import plot_trajectories

        _guard_write(lambda: plot_trajectories(result.trajectories, plot, title=title), plot)


def _num(value: float | None, spec: str = ".3f") -> str:
    """A band's number for a table; a dash where it is undefined (no finite chain)."""
    return "-" if value is None else format(value, spec)
