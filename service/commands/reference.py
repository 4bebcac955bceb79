"""`collapse-guard reference build | list | show`: human reference corpora, local or remote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands.common import (
    ApiKeyOption,
    FormatOption,
    QuietOption,
    SplitOption,
    TextFieldOption,
    TextUnitOption,
    UrlOption,
    user_errors,
)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="reference",
        help="Build, list and show human reference corpora.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="reference")

    @group.command("build")
    def build(
        name: Annotated[str, typer.Argument(help="Name of the new reference.")],
        files: Annotated[
            list[Path], typer.Argument(help="JSONL, Parquet, text files, folders, datasets dirs.")
        ],
        text_field: TextFieldOption = "text",
        format: FormatOption = "auto",
        text_unit: TextUnitOption = "file",
        split: SplitOption = None,
        engine: Annotated[
            str, typer.Option("--engine", help="Embedding engine: local or ray.")
        ] = "local",
        resume: Annotated[
            bool,
            typer.Option(
                "--resume",
                help="Continue an interrupted (killed) build of NAME from its last staged chunk; "
                "the input and settings must be the same. Starts afresh if nothing is staged.",
            ),
        ] = False,
        restart: Annotated[
            bool,
            typer.Option("--restart", help="Discard an interrupted build of NAME and start over."),
        ] = False,
        chunk_size: Annotated[
            int | None,
            typer.Option(
                "--chunk-size",
                min=1,
                help="Documents embedded and staged on disk at a time (default: setting "
                "COLLAPSE_GUARD_BUILD_CHUNK_DOCUMENTS, 4096): a kill loses at most one chunk.",
            ),
        ] = None,
        url: UrlOption = None,
        api_key: ApiKeyOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Embed human documents and store them as reference NAME (index, tails, modes).

        The input is read as a stream and embedded in chunks, each staged in the data directory,
        so memory does not grow with the text and a killed build continues with --resume."""
        from service.cli import console, fail
        from service.commands.backend import BuildOptions, open_backend
        from service.commands.common import open_corpus, summarise_input
        from service.render import progress_group

        def notice(line: str) -> None:
            if not quiet:
                console.print(line, highlight=False)

        options = BuildOptions(
            chunk_documents=chunk_size, resume=resume, restart=restart, notice=notice
        )
        with user_errors(fail):
            reader = open_corpus(
                files, text_field=text_field, format=format, text_unit=text_unit, split=split
            )
            with (
                open_backend(url, api_key, engine=engine) as backend,
                progress_group(console, quiet=quiet) as add,
            ):
                reader.progress = add("reading (bytes)")
                info = backend.build_reference(
                    name,
                    reader,  # read as the build goes, one chunk at a time
                    progress=add("embedding reference"),
                    stage=add,
                    options=options,
                )
            summarise_input(console, reader, "reference", quiet=quiet)
        if not quiet:
            console.print(reference_table([info]))

    @group.command("list")
    def list_(
        url: UrlOption = None,
        api_key: ApiKeyOption = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    ) -> None:
        """List the stored references."""
        import json

        from service.cli import console, fail
        from service.commands.backend import open_backend

        with user_errors(fail), open_backend(url, api_key) as backend:
            infos = backend.list_references()
        if json_out:
            print(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
        elif infos:
            console.print(reference_table(infos))
        else:
            console.print("no references yet: collapse-guard reference build NAME FILES...")

    @group.command("show")
    def show(
        name: Annotated[str, typer.Argument(help="Reference name.")],
        url: UrlOption = None,
        api_key: ApiKeyOption = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    ) -> None:
        """Show one reference: size, model, dimension, tail quantile, created."""
        from service.cli import console, fail
        from service.commands.backend import open_backend

        with user_errors(fail), open_backend(url, api_key) as backend:
            info = backend.show_reference(name)
        if json_out:
            print(info.model_dump_json(indent=2))
        else:
            console.print(reference_table([info]))


def reference_table(infos: list) -> object:
    """One row per reference, or a field/value listing of a single one (fits 80 columns)."""
    from rich.table import Table

    if len(infos) == 1:
        table = Table(title=f"Reference {infos[0].name}", title_justify="left", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for field, value in infos[0].model_dump().items():
            table.add_row(field.replace("_", " "), _cell(value))
        return table
    table = Table(title="References", title_justify="left")
    wanted = ("name", "size", "model", "dimension", "tail_quantile", "index", "created")
    for field in wanted:
        table.add_column(field.replace("_", " "), overflow="fold")
    for info in infos:
        table.add_row(*(_cell(getattr(info, f, None)) for f in wanted))
    return table


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)
