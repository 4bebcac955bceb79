"""Options and helpers shared by the `reference` and `audit` commands (no `register` here).

Exit codes a pipeline can branch on (documented in `collapse-guard audit --help` and the README):
  0   keep      the corpus is within the policy
  10  top-up    add the reported number of fresh human documents first
  20  reject    no allowed top-up suffices, the synthetic fraction exceeds the hard limit, or
                the candidate's in-domain part reads as mostly generated
  30  inconclusive  the reference cannot judge this corpus (out of domain) or the synthetic
                fraction is not identifiable; the reasons say what was measured and what to do
  2   error     a user mistake (missing file, unknown reference, unreadable format, bad option...)
  1   crash     a bug: please report it with the traceback
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

EXIT_CODES = {"keep": 0, "top-up": 10, "reject": 20, "inconclusive": 30}
EXIT_HELP = (
    "Exit codes: 0 keep, 10 top-up, 20 reject, 30 inconclusive, 2 user error (one line on "
    "stderr), 1 crash."
)

TextFieldOption = Annotated[
    str, typer.Option("--text-field", help="JSONL field / Parquet or dataset column of the text.")
]
FormatOption = Annotated[
    str,
    typer.Option(
        "--format", help="Input format: auto (by extension), jsonl, parquet, text, hf (datasets)."
    ),
]
TextUnitOption = Annotated[
    str,
    typer.Option(
        "--text-unit", help="Plain text: one document per file, per line, or per paragraph."
    ),
]
SplitOption = Annotated[
    str | None, typer.Option("--split", help="Split of a saved Hugging Face DatasetDict.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="COLLAPSE_GUARD_URL", help="Use a running service instead of local data."
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="COLLAPSE_GUARD_API_KEY", help="API key for --url."),
]


def open_corpus(
    paths: list[Path],
    *,
    text_field: str,
    format: str,
    text_unit: str,
    split: str | None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """A streaming `CorpusReader` (files are checked now, read when iterated)."""
    from service.inputs import CorpusReader

    return CorpusReader(
        paths,
        format=format,  # type: ignore[arg-type]  # validated by CorpusReader
        text_field=text_field,
        text_unit=text_unit,  # type: ignore[arg-type]
        split=split,
        progress=progress,
    )


def summarise_input(console: Console, reader: Any, what: str, *, quiet: bool) -> None:
    drawn = getattr(reader, "sampled", None)
    if not quiet and drawn is not None:  # a two-stage sample: the corpus was not read through
        from service.sampled import format_bytes

        size = f"{drawn.corpus_size:,}" if drawn.corpus_size_exact else f"~{drawn.corpus_size:,}"
        console.print(
            f"{what}: {size} documents in {len(reader.files):,} file(s); two-stage sample of "
            f"{len(drawn.texts):,} from {drawn.n_draws:,} draws, read "
            f"{format_bytes(drawn.bytes_read)} of {format_bytes(drawn.bytes_total)} "
            f"({drawn.bytes_read / drawn.bytes_total:.2%})",
            highlight=False,
        )
    elif not quiet:
        skipped = f", {reader.n_empty:,} empty skipped" if reader.n_empty else ""
        console.print(
            f"{what}: {reader.n_documents:,} documents from {len(reader.files):,} file(s){skipped}",
            highlight=False,
        )


@contextmanager
def user_errors(fail: Callable[[str], typer.Exit]) -> Iterator[None]:
    """Turn every expected failure into one clear line and exit code 2 (no traceback)."""
    from detectors.errors import CollapseGuardError

    try:
        yield
    except CollapseGuardError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise fail(f"cannot access{where}: {exc.strerror or exc}") from None


def quiet_model_loading() -> None:
    """Silence the model loader's own tqdm bars: they would interleave with ours (and --quiet)."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
