"""Read corpora from files as a stream of document texts: JSONL, Parquet, text, HF datasets.

Everything here is an iterator: a JSONL or text file is read line by line, Parquet in record
batches, a `datasets` folder in batches of its memory-mapped Arrow table, so a corpus larger than
memory can be sampled (`detectors.sampling.reservoir_sample`) without being loaded.

Empty documents (empty or whitespace-only text, JSON null, Parquet null) are skipped and counted
in `CorpusReader.n_empty`: a corpus dump with a few blank rows should not fail an audit, but the
count is reported so the blanks are never silent. A corpus in which every document is empty is an
`EmptyCorpusError`. Every other problem (missing file, unknown format, wrong field name, invalid
JSON, non-UTF-8 bytes, a non-text field) raises an `InputError` whose message names the file, the
line or row, and what to change.

Formats are chosen by extension (`--format` overrides it):
  .jsonl .ndjson .json-lines  one JSON object per line, text in `text_field` (default "text")
  .parquet .pq                column `text_field`
  .txt .text .md              plain text, one document per file, per line or per paragraph
                              (`text_unit`: "file", "line", "paragraph" = blank-line separated)
  a folder with dataset_info.json / dataset_dict.json: a Hugging Face dataset saved with
                              `save_to_disk` (column `text_field`; `split` picks a DatasetDict part)
  any other folder            every file in it (recursively, sorted, hidden files skipped), each
                              read by its own extension
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, get_args

from detectors.embedding import lone_surrogate
from detectors.errors import EmptyCorpusError, InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from detectors.shard_sampling import Piece, ShardedSample

InputFormat = Literal["auto", "jsonl", "parquet", "text", "hf"]
TextUnit = Literal["file", "line", "paragraph"]
BytesProgress = Callable[[int, int], None]  # (bytes read, total bytes)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json-lines")
PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".txt", ".text", ".md")
HF_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")
BATCH_ROWS = 1024
PROGRESS_EVERY = 1000  # documents between progress reports inside one JSONL file


class InputError(InvalidInputError):
    """A corpus file that cannot be read as asked; the message says which file and what to fix."""


class InputNotFoundError(InputError):
    """A path that does not exist."""


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise InputError(
            f"{where}: not valid UTF-8 (byte 0x{bad} at offset {exc.start}); "
            "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def read_jsonl(stream: IO[bytes], name: str, *, text_field: str = "text") -> Iterator[str | None]:
    """Texts of a JSON-lines stream, one per non-blank line (None for a null text)."""
    for lineno, raw in enumerate(stream, start=1):
        text = _jsonl_text(raw, f"{name}:{lineno}", text_field)
        if text is not _BLANK:
            yield text  # type: ignore[misc]  # a str or None once the blank marker is out


_BLANK = object()  # a blank line: no document at all (unlike an empty text, which is counted)


def _jsonl_text(raw: bytes, where: str, text_field: str) -> str | object | None:
    """The text of one JSONL line, None for a null text, `_BLANK` for a blank line."""
    line = _utf8(raw, where).strip()
    if not line:
        return _BLANK
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
            "JSONL needs one JSON object per line"
        ) from None
    if not isinstance(record, dict):
        raise InputError(
            f"{where}: expected a JSON object with a {text_field!r} field, "
            f"got a JSON {type(record).__name__}"
        )
    if text_field not in record:
        fields = ", ".join(repr(k) for k in record) or "none"
        raise InputError(
            f"{where}: no field {text_field!r} (fields: {fields}); "
            "choose the text field with --text-field"
        )
    return _text_value(record[text_field], where, text_field)


def _text_value(value: object, where: str, field: str) -> str | None:
    if isinstance(value, str) and (why := lone_surrogate(value)) is not None:
        raise InputError(f"{where}: field {field!r} holds {why}")
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{where}: field {field!r} holds {type(value).__name__}, expected text")


def read_text(stream: IO[bytes], name: str, *, text_unit: TextUnit = "file") -> Iterator[str]:
    """Documents of a plain-text stream: the whole file, each line, or each blank-line paragraph."""
    if text_unit == "file":
        # One document per file: the document is the file, so it is read whole by definition.
        yield _utf8(stream.read(), name)
        return
    paragraph: list[str] = []
    for lineno, raw in enumerate(stream, start=1):
        line = _utf8(raw, f"{name}:{lineno}").rstrip("\r\n")
        if text_unit == "line":
            yield line
        elif line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            yield " ".join(paragraph)
            paragraph = []
    if paragraph:
        yield " ".join(paragraph)


def _parquet_file(source: Path | IO[bytes], name: str, text_field: str) -> Any:
    """A `pyarrow.parquet.ParquetFile` whose `text_field` is a text column (InputError if not)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({exc})") from None
    schema = parquet.schema_arrow
    if text_field not in schema.names:
        raise InputError(
            f"{name}: no column {text_field!r} (columns: {', '.join(map(repr, schema.names))}); "
            "choose the text column with --text-field"
        )
    kind = schema.field(text_field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputError(f"{name}: column {text_field!r} holds {kind}, expected text (string)")
    return parquet


def read_parquet(
    source: Path | IO[bytes], name: str, *, text_field: str = "text"
) -> Iterator[str | None]:
    """Texts of one Parquet column, read in record batches (never the whole table)."""
    import pyarrow as pa

    parquet = _parquet_file(source, name, text_field)
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[text_field]):
            yield from batch.column(0).to_pylist()
    except pa.ArrowException as exc:
        raise InputError(f"{name}: Parquet data is unreadable ({exc})") from None


def _hf_dataset(folder: Path, *, text_field: str, split: str | None) -> Any:
    """The `datasets.Dataset` saved in `folder` (memory-mapped), checked to hold `text_field`."""

    import datasets

    datasets.disable_progress_bars()
    try:
        loaded = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise InputError(
            f"{folder}: not a readable Hugging Face dataset folder ({exc}); "
            "save it with Dataset.save_to_disk"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if split is None and len(splits) == 1:
            split = splits[0]
        if split not in loaded:
            raise InputError(
                f"{folder}: a dataset with splits {', '.join(map(repr, splits))}; "
                + ("pick one with --split" if split is None else f"it has no split {split!r}")
            )
        dataset = loaded[split]
    else:
        if split is not None:
            raise InputError(f"{folder}: a single dataset without splits; drop --split")
        dataset = loaded
    if text_field not in dataset.column_names:
        cols = ", ".join(map(repr, dataset.column_names))
        raise InputError(
            f"{folder}: no column {text_field!r} (columns: {cols}); "
            "choose the text column with --text-field"
        )
    return dataset


def read_hf_dataset(
    folder: Path, *, text_field: str = "text", split: str | None = None
) -> Iterator[str | None]:
    """Texts of a Hugging Face dataset saved with `save_to_disk` (memory-mapped, batched)."""
    dataset = _hf_dataset(folder, text_field=text_field, split=split)
    row = 0
    for batch in dataset.select_columns([text_field]).iter(batch_size=BATCH_ROWS):
        for value in batch[text_field]:
            yield _text_value(value, f"{folder} row {row}", text_field)
            row += 1


def detect_format(path: Path) -> InputFormat:
    if path.is_dir():
        return "hf" if any((path / m).is_file() for m in HF_MARKERS) else "auto"
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    known = ", ".join(JSONL_SUFFIXES + PARQUET_SUFFIXES + TEXT_SUFFIXES)
    raise InputError(
        f"{path}: unknown format (extension {path.suffix or 'none'!r}; known: {known}, "
        "or a datasets folder); name it accordingly or pass --format jsonl|parquet|text|hf"
    )


class CorpusReader:
    """Iterate the non-empty documents of files and folders, counting what was skipped.

    Iterable more than once (each pass re-reads the files); `n_documents` and `n_empty` describe
    the last complete pass. `progress`, if given, is called with (bytes read, total bytes) after
    each file, so a bar can show progress over many files.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        format: InputFormat = "auto",
        text_field: str = "text",
        text_unit: TextUnit = "file",
        split: str | None = None,
        progress: BytesProgress | None = None,
    ) -> None:
        if not paths:
            raise InputError("no input files given")
        if format not in get_args(InputFormat):
            raise InputError(
                f"unknown format {format!r}; choose from {list(get_args(InputFormat))}"
            )
        if text_unit not in get_args(TextUnit):
            raise InputError(
                f"unknown text unit {text_unit!r}; choose from {list(get_args(TextUnit))}"
            )
        if not text_field:
            raise InputError("the text field name is empty: pass --text-field NAME")
        self.paths = [Path(p) for p in paths]
        for path in self.paths:
            if not path.exists():
                raise InputNotFoundError(f"{path}: no such file or folder")
        self.format: InputFormat = format
        self.text_field = text_field
        self.text_unit: TextUnit = text_unit
        self.split = split
        self.progress = progress
        self.files = list(self._plan())
        self.total_bytes = sum(_size(path) for path, _ in self.files)
        self.n_documents = 0
        self.n_empty = 0
        self.sampled: ShardedSample | None = None  # the last two-stage sample drawn

    def _plan(self) -> Iterator[tuple[Path, InputFormat]]:
        """(path, format) of every file or dataset folder to read, in a stable order."""
        for path in self.paths:
            kind = self.format if self.format != "auto" else detect_format(path)
            if path.is_dir() and kind != "hf":
                files = sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.parts)
                )
                if not files:
                    raise InputError(f"{path}: the folder holds no files")
                for file in files:
                    yield file, (kind if kind != "auto" else detect_format(file))
            else:
                yield path, kind

    def _read(self, path: Path, kind: InputFormat, done: int = 0) -> Iterator[str | None]:
        """Texts of one file; within a large JSONL/text file, progress every PROGRESS_EVERY."""
        if kind == "hf":
            yield from read_hf_dataset(path, text_field=self.text_field, split=self.split)
            return
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a {kind} file")
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise InputError(f"{path}: cannot open ({exc.strerror})") from None
        with stream:
            if kind == "jsonl":
                texts = read_jsonl(stream, str(path), text_field=self.text_field)
                for i, text in enumerate(texts, start=1):
                    yield text
                    if self.progress is not None and i % PROGRESS_EVERY == 0:
                        # Binary streams allow tell() while iterating lines.
                        self.progress(done + stream.tell(), self.total_bytes)
            elif kind == "parquet":
                yield from read_parquet(stream, str(path), text_field=self.text_field)
            else:
                yield from read_text(stream, str(path), text_unit=self.text_unit)

    def __iter__(self) -> Iterator[str]:
        n_docs = n_empty = done = 0
        for path, kind in self.files:
            for text in self._read(path, kind, done):
                if text is None or not text.strip():
                    n_empty += 1
                    continue
                n_docs += 1
                yield text
            done += _size(path)
            if self.progress is not None:
                self.progress(done, self.total_bytes)
        self.n_documents, self.n_empty = n_docs, n_empty
        if n_docs == 0:
            what = f" ({n_empty} empty documents skipped)" if n_empty else ""
            raise EmptyCorpusError(f"no documents in {', '.join(map(str, self.paths))}{what}")

    def pieces(self, block_bytes: int) -> list[Piece]:
        """What a two-stage sample draws from (`service.sample_pieces.pieces_of`)."""
        from service.sample_pieces import pieces_of

        return pieces_of(self, block_bytes)

    def sample(
        self,
        size: int,
        rng: np.random.Generator,
        *,
        full_read_bytes: int,
        block_bytes: int = 16 * 1024,
    ) -> ShardedSample:
        """A uniform sample of about `size` documents: by reading everything (reservoir) when
        the input holds at most `full_read_bytes`, else two-stage (`detectors.shard_sampling`).
        `n_documents` is then the corpus size (estimated unless `corpus_size_exact`)."""
        import numpy as np

        from detectors.sampling import reservoir_sample
        from detectors.shard_sampling import ShardedSample, two_stage_sample

        if self.total_bytes <= full_read_bytes:
            texts, seen = reservoir_sample(self, size, rng)
            return ShardedSample(
                texts=texts,
                corpus_size=seen,
                corpus_size_exact=True,
                bytes_read=self.total_bytes,
                bytes_total=self.total_bytes,
                clusters=np.arange(len(texts)),
                sampling="full read",
            )
        drawn = two_stage_sample(
            self.pieces(block_bytes), size, rng, block_bytes=block_bytes, progress=self.progress
        )
        self.n_documents, self.n_empty, self.sampled = drawn.corpus_size, 0, drawn
        if not drawn.texts:
            raise EmptyCorpusError(
                f"no documents in a two-stage sample of {', '.join(map(str, self.paths))}"
            )
        return drawn


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def read_documents(
    paths: Iterable[str | Path],
    *,
    format: InputFormat = "auto",
    text_field: str = "text",
    text_unit: TextUnit = "file",
    split: str | None = None,
) -> list[str]:
    """Every non-empty document of `paths` in a list (for corpora that fit in memory)."""
    reader = CorpusReader(
        list(paths), format=format, text_field=text_field, text_unit=text_unit, split=split
    )
    return list(reader)
