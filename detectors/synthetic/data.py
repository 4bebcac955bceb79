"""Text for evaluating synthetic-fraction estimates: the committed SmolLM2 continuations, two more
human corpora that ship in installed packages, and length matching.

- `smollm2_continuations()`: machine text from `scripts/generate_synthetic.py` (SmolLM2-135M
  continuing the first 15-25 words of BBC/Wikipedia documents; each row names its human twin).
- `lee_news()`: the Lee background corpus in gensim's test data: 300 Australian (ABC) news stories
  from about 2001. Another outlet and period of the same genre as BBC News 2004-05.
- `usenet_posts()`: gensim's pickled mini 20-Newsgroups sample (Usenet posts from 1993, headers
  and quoted lines removed): another genre, for out-of-domain checks.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detectors.corpora import Document
from detectors.errors import InvalidInputError

DEFAULT_CONTINUATIONS = Path(__file__).resolve().parent / "smollm2_continuations.jsonl"
# Text of modern chat models with each row's generator family (scripts/import_chat_examples.py).
CHAT_EXAMPLES = Path(__file__).resolve().parent / "chat_examples.jsonl"
SMOLLM2_FAMILY = "smollm2"


def chat_examples() -> list[dict]:
    """Rows of the bundled chat-model text (id, text, family, generator, stratum, source...)."""
    return smollm2_continuations(CHAT_EXAMPLES)


def smollm2_continuations(path: str | Path | None = None) -> list[dict]:
    """Rows of a generated-text JSONL: by default the bundled SmolLM2 continuations (id, text,
    prompt, twin_source, stratum, sampling, ...); any file of rows with a 'text' field."""
    file = Path(path) if path is not None else DEFAULT_CONTINUATIONS
    if not file.is_file():
        raise InvalidInputError(
            f"no generated text at {file}: run scripts/generate_synthetic.py to create it"
        )
    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{file} line {number} is not JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InvalidInputError(f"{file} line {number} has no string 'text' field")
        rows.append(row)
    return rows


def _gensim_data(name: str) -> Path:
    from gensim.test.utils import datapath

    return Path(datapath(name))


def lee_news() -> list[Document]:
    """300 ABC (Australian) news stories, c. 2001: one document per line of lee_background.cor."""
    lines = _gensim_data("lee_background.cor").read_text(encoding="utf-8", errors="replace")
    return [
        Document(text=" ".join(line.split()), source=f"lee/{i:03d}")
        for i, line in enumerate(lines.splitlines())
        if len(line.split()) >= 40
    ]


class _BunchUnpickler(pickle.Unpickler):
    # The file is a Python 2 pickle of an old scikit-learn Bunch; a plain dict is all we need.
    def find_class(self, module: str, name: str) -> object:
        if name == "Bunch":
            return dict
        return super().find_class(module, name)


def usenet_posts(min_words: int = 40) -> list[Document]:
    """Bodies of gensim's mini 20-Newsgroups posts: headers, quoted lines and signatures dropped."""
    raw = zlib.decompress(_gensim_data("mini_newsgroup").read_bytes())
    bunch = _BunchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    docs = []
    for i, post in enumerate(bunch["data"]):
        _headers, _, body = post.partition("\n\n")
        lines = [
            ln
            for ln in body.splitlines()
            if not ln.lstrip().startswith((">", "|", ":")) and not re.search(r"writes:\s*$", ln)
        ]
        body = "\n".join(lines).split("\n-- \n")[0]
        text = " ".join(body.split())
        if len(text.split()) >= min_words:
            docs.append(Document(text=text, source=f"usenet/{i:03d}"))
    return docs


def truncate_words(text: str, n_words: int) -> str:
    return " ".join(text.split()[:n_words])


def length_match(
    texts: Sequence[str], target_lengths: Sequence[int], rng: np.random.Generator
) -> list[str]:
    """Cut each text to a word count drawn from `target_lengths` (e.g. the synthetic documents').

    Without this, human documents (hundreds of words) and generated ones (about 75) differ in
    length, which every length-sensitive feature would turn into a trivial and useless tell.
    """
    if len(target_lengths) == 0:
        raise InvalidInputError("target_lengths is empty: pass the word counts to match")
    draws = rng.choice(np.asarray(target_lengths), size=len(texts), replace=True)
    return [truncate_words(t, int(n)) for t, n in zip(texts, draws, strict=True)]
