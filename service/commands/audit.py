"""`collapse-guard audit CORPUS --reference NAME`: the verdict as exit code, JSON and report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands.common import (
    EXIT_CODES,
    EXIT_HELP,
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
    @app.command("audit", epilog=EXIT_HELP)
    def audit(
        corpus: Annotated[
            list[Path], typer.Argument(help="Candidate corpus: files, folders, datasets dirs.")
        ],
        reference: Annotated[
            str, typer.Option("--reference", "-r", help="Name of the stored reference.")
        ],
        policy: Annotated[
            Path | None, typer.Option("--policy", help="Policy TOML (thresholds and plan).")
        ] = None,
        plan: Annotated[
            str | None,
            typer.Option(
                "--plan",
                help="Retraining plan, e.g. 'generations=5,policy=keep-real,beta=0.1' "
                "(overrides the policy file's plan).",
            ),
        ] = None,
        report: Annotated[
            Path | None,
            typer.Option("--report", help="Write the HTML report here (and a PNG beside it)."),
        ] = None,
        json_out: Annotated[
            Path | None,
            typer.Option("--json", help="Write the audit result JSON here ('-': stdout)."),
        ] = None,
        engine: Annotated[
            str, typer.Option("--engine", help="Embedding/scoring engine: local or ray.")
        ] = "local",
        text_field: TextFieldOption = "text",
        format: FormatOption = "auto",
        text_unit: TextUnitOption = "file",
        split: SplitOption = None,
        url: UrlOption = None,
        api_key: ApiKeyOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Audit a candidate corpus against a reference: keep, top-up, reject or inconclusive,
        with reasons.

        Prints the verdict and its reasons; the exit code says the decision.
        """
        from service.cli import console, err_console, fail
        from service.commands.backend import load_policy, open_backend, parse_plan
        from service.commands.common import open_corpus, summarise_input
        from service.render import progress_group

        to_stdout = json_out is not None and str(json_out) == "-"
        out = err_console if to_stdout else console  # keep stdout clean for the JSON
        for target in (report, json_out):
            if target is not None and str(target) != "-" and not target.parent.is_dir():
                raise fail(f"cannot write {target}: folder {target.parent} does not exist")
        with user_errors(fail):
            policy_obj = load_policy(policy)
            plan_obj = parse_plan(plan) if plan is not None else None
            reader = open_corpus(
                corpus, text_field=text_field, format=format, text_unit=text_unit, split=split
            )
            with (
                open_backend(url, api_key, engine=engine) as backend,
                progress_group(out, quiet=quiet) as add,
            ):
                reader.progress = add("reading candidate (bytes)")
                outcome = backend.audit(
                    reference,
                    reader,
                    policy=policy_obj,
                    plan=plan_obj,
                    progress=add("embedding sample"),
                    keep_vectors=report is not None,
                    stage=add,
                )
            summarise_input(out, reader, "candidate", quiet=quiet)
            result = outcome.result
            if json_out is not None:
                payload = result.model_dump_json(indent=2)
                if str(json_out) == "-":
                    print(payload)
                else:
                    json_out.write_text(payload + "\n", encoding="utf-8")
            if report is not None:
                from service.report.build import report_data
                from service.report.render import write_html, write_png

                data = report_data(
                    result,
                    reference_name=reference,
                    candidate_name=", ".join(p.name for p in corpus),
                    extras=outcome.extras,
                )
                write_html(data, report)
                png = write_png(data, report.with_suffix(".png"))
                if not quiet:
                    out.print(
                        f"report: {report} (summary image {png})", highlight=False, markup=False
                    )
        if not quiet:
            from service.commands.backend import verdict_panel

            out.print(verdict_panel(result))
        raise typer.Exit(EXIT_CODES[result.verdict.decision])
