"""Terminal rendering of detector results with rich (no numbers are computed here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from detectors.results import CoverageReport, MetricComparison, SyntheticReport


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column formats bytes)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.1f}/s" if task.speed else "  -/s", style="cyan")


@contextmanager
def progress_group(
    console: Console, *, quiet: bool, description_format: str = "{task.description:<28}"
) -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    """Bars with rate and ETA in one live display: `add(description)` returns a (done, total)
    callback for a new bar; everything is silent when `quiet`."""
    if quiet:
        yield lambda description: lambda done, total: None
        return
    columns = (
        TextColumn(description_format),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:

        def add(description: str) -> Callable[[int, int], None]:
            task = progress.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return update

        yield add


@contextmanager
def progress_bar(
    console: Console, description: str, *, quiet: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """A single bar: a (done, total) callback with rate and ETA; silent when `quiet`."""
    with progress_group(console, quiet=quiet, description_format="{task.description}") as add:
        yield add(description)


def _fmt(m: MetricComparison) -> list[str]:
    return [
        f"{m.value:.3f} [{m.value_low:.3f}, {m.value_high:.3f}]",
        f"{m.baseline:.3f}",
        f"{m.ratio:.2f} [{m.low:.2f}, {m.high:.2f}]",
    ]


def coverage_table(title: str, report: CoverageReport) -> Table:
    level = f"{report.tail_coverage.level:.0%}"
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column(f"candidate [{level} CI]", justify="right")
    table.add_column("human baseline", justify="right")
    table.add_column(f"ratio [{level} CI]", justify="right")
    for name in ("tail_coverage", "coverage", "precision", "recall", "density"):
        table.add_row(name.replace("_", " "), *_fmt(getattr(report, name)))
    table.caption = (
        f"{report.sample_size} candidate docs vs {report.sample_size} held-out human docs; "
        f"reference {report.reference_size} docs, tail = sparsest {report.tail_quantile:.0%} "
        f"({report.n_tail} docs), k={report.k}, {report.index} index, "
        f"{report.n_bootstrap} bootstrap resamples"
    )
    return table


def modes_table(report: CoverageReport, limit: int = 12) -> Table:
    table = Table(title="Modes (k-means topics of the reference)", title_justify="left")
    for col in ("mode", "reference", "candidate [CI]", "baseline", "status", "exemplar"):
        table.add_column(col, overflow="fold" if col == "exemplar" else "ellipsis")
    style = {"missing": "bold red", "under": "yellow", "over": "magenta", "ok": "green"}
    rows = sorted(report.modes, key=lambda r: r.candidate_mass / max(r.reference_mass, 1e-9))
    for row in rows[:limit]:
        table.add_row(
            str(row.mode),
            f"{row.reference_mass:.3f}",
            f"{row.candidate_mass:.3f} [{row.candidate_low:.3f}, {row.candidate_high:.3f}]",
            f"{row.baseline_mass:.3f}",
            f"[{style[row.status]}]{row.status}[/]",
            (row.exemplar or "")[:70],
        )
    return table


def synthetic_table(reports: dict[str, SyntheticReport]) -> Table:
    """One row per candidate: synthetic and out-of-domain shares with their intervals."""
    table = Table(title="Synthetic fraction", title_justify="left")
    for col in ("candidate", "synthetic [CI]", "out of domain [CI]", "method", "notes"):
        table.add_column(col, overflow="fold" if col == "notes" else "ellipsis")
    first = None
    for label, r in reports.items():
        s, o = r.synthetic, r.out_of_domain
        first = first or r
        table.add_row(
            label,
            f"{s.point:.2f} [{s.low:.2f}, {s.high:.2f}]",
            f"{o.point:.2f} [{o.low:.2f}, {o.high:.2f}]",
            s.method,
            "; ".join(r.notes)[:120],
        )
    if first is not None:
        table.caption = (
            f"{first.mode} mode, {first.synthetic.level:.0%} intervals, features: "
            f"{', '.join(first.features)}; learned from {first.n_labelled_synthetic} generated "
            f"examples and {first.n_reference} reference documents"
        )
    return table
