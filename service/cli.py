"""The `collapse-guard` command line. Thin: parse, call the library, render, map errors to exits."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from detectors.errors import CollapseGuardError

app = typer.Typer(
    name="collapse-guard",
    help="Guard training corpora against model collapse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)

EXIT_ERROR = 2  # every user mistake; 0 means success


@app.callback()
def _root() -> None:
    """Guard training corpora against model collapse: coverage of the human tails, synthetic
    fraction, and collapse forecasts, against a reference human corpus."""


def fail(message: str) -> typer.Exit:
    """One clear line on stderr and a non-zero exit: no traceback for user mistakes."""
    # soft_wrap: never break the message over lines, whatever the terminal width (one line).
    # escape: file names and parser messages may contain [brackets] that rich reads as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_ERROR)


@app.command()
def demo(
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the coverage and synthetic reports as JSON here."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars or tables.")] = False,
    reference_docs: Annotated[
        int, typer.Option(min=80, help="Reference size (a quarter is held out: 20+ documents).")
    ] = 1000,
    candidate_docs: Annotated[int, typer.Option(min=20, help="Unseen articles to sample.")] = 500,
) -> None:
    """Audit four candidates (fresh, tails dropped, generated, another outlet) against real BBC
    News articles."""
    from detectors.embedding import Embedder
    from service.commands.common import quiet_model_loading
    from service.demo import run_demo
    from service.settings import load_settings

    if json_out is not None and not json_out.parent.is_dir():  # before minutes of work
        raise fail(f"cannot write {json_out}: no such folder {json_out.parent}")
    try:
        settings = load_settings()  # the demo's data is its own, the model settings are not
        quiet_model_loading()
        result = run_demo(
            console,
            embedder=Embedder(
                model=settings.embedding_model, precision=settings.embedding_precision
            ),
            n_reference=reference_docs,
            n_pool=candidate_docs,
            quiet=quiet,
        )
    except CollapseGuardError as exc:
        raise fail(str(exc)) from None
    if json_out is not None:
        payload = {
            "fresh": result.fresh.model_dump(mode="json"),
            "core_only": result.core_only.model_dump(mode="json"),
            "synthetic": {k: v.model_dump(mode="json") for k, v in result.synthetic.items()},
        }
        try:
            json_out.write_text(json.dumps(payload, indent=2))
        except OSError as exc:
            raise fail(f"cannot write {json_out}: {exc.strerror}") from None


def _register_commands() -> None:
    """Attach every command module in `service.commands` (each exposes `register(app)`)."""
    import importlib
    import pkgutil

    import service.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"service.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:  # pragma: no cover - console-script shim
    sys.exit(app())


if __name__ == "__main__":
    main()
