r"""Copy text of modern chat models (and the human texts they continued) into the repository.

The source is a JSONL of real machine text gathered from two PyPI source distributions (a
provenance line per row, field `source`):
- `raid-bench` 0.2.0 (MIT): Fast-DetectGPT's reference files, GPT-3.5-turbo and GPT-4
  continuations of Reddit WritingPrompts stories and PubMedQA answers, with the human originals
  (`pair_id` joins a continuation to its original; the shared opening words are removed from both);
- `alpaca-eval` 0.6.6 (Apache-2.0): 805 answers of gpt-3.5-turbo-0301 to AlpacaEval's instructions
  (the generator is inferred from AlpacaEval's documentation; there are no human answers).

Written here:
- `detectors/synthetic/chat_examples.jsonl`: the generated rows, each with its generator
  `family` (the audit reports what it can see per family) and its genre as `stratum`; the
  estimator's reference-only mode learns from these beside the SmolLM2 continuations.
- `benchmarks/data/chat_human.jsonl`: the human originals, for tests and benchmarks only.

Usage (once; the project never reads the source at run time):
    .venv/bin/python scripts/import_chat_examples.py ../shared/data/chat_generated.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "detectors" / "synthetic" / "chat_examples.jsonl"
HUMAN = ROOT / "benchmarks" / "data" / "chat_human.jsonl"
LICENSES = {"raid-bench": "MIT (raid-bench 0.2.0 sdist)", "alpaca-eval": "Apache-2.0"}


def family_of(generator: str) -> str:
    """The generator family an audit reports: 'gpt-3.5-turbo-0301 (inferred)' -> 'gpt-3.5-turbo'."""
    match = re.match(r"(gpt-3\.5-turbo|gpt-4)", generator)
    if match is None:
        raise ValueError(f"unknown generator {generator!r}: add its family here")
    return match.group(1)


def stratum_of(genre: str) -> str:
    """A short genre slug: 'stories (Reddit WritingPrompts)' -> 'stories'."""
    return re.sub(r"[^a-z]+", "-", genre.split("(")[0].strip().lower()).strip("-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="chat_generated.jsonl")
    args = parser.parse_args()
    generated, human = [], []
    for number, line in enumerate(args.source.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        license_ = next(v for k, v in LICENSES.items() if row["source"].startswith(k))
        out = {
            "id": f"chat-{number:05d}",
            "text": row["text"],
            "stratum": stratum_of(row["genre"]),
            "genre": row["genre"],
            "source": row["source"],
            "license": license_,
        }
        if "pair_id" in row:
            out["pair_id"] = row["pair_id"]
        if row["is_machine"]:
            family = family_of(row["generator"])
            generated.append({**out, "family": family, "generator": row["generator"]})
        else:
            human.append(out)
    EXAMPLES.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in generated))
    HUMAN.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in human))
    print(f"{len(generated)} generated rows -> {EXAMPLES.relative_to(ROOT)}")
    print(f"{len(human)} human rows -> {HUMAN.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
