"""The pieces a two-stage sample of a `CorpusReader` draws from, and how each is read.

Byte blocks of JSONL and line-text files (`LineBlock`), Parquet row groups (`RowGroup`), Arrow
record batches of `save_to_disk` folders (`ArrowBatch`), other files whole (`WholeFile`). Each
states its size (`nbytes`, the draw's weight), its rows when known without reading it, and reads
its documents (all, or the given rows) returning the bytes it touched, which the audit reports.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.inputs import (
    _BLANK,
    CorpusReader,
    InputError,
    InputFormat,
    _hf_dataset,
    _jsonl_text,
    _parquet_file,
    _text_value,
    _utf8,
)

if TYPE_CHECKING:
    import numpy as np

    from detectors.shard_sampling import Piece

PAGE = 4096  # a memory-mapped read touches at least one page


class LineBlock:
    """Lines of a JSONL (or line-per-document text) file whose first byte is in [start, end):
    read by seeking to `start`, skipping the line already under way, and reading lines until one
    starts at or past `end`. Every line belongs to exactly one block of its file."""

    rows = None

    def __init__(self, path: Path, start: int, end: int, reader: CorpusReader, kind: str) -> None:
        self.path, self.start, self.end, self.kind = path, start, end, kind
        self.text_field = reader.text_field
        self.nbytes = self.cost = end - start

    def read(self, rows: np.ndarray | None) -> tuple[list[str | None], int]:
        texts: list[str | None] = []
        try:
            stream = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open ({exc.strerror})") from None
        with stream:
            if self.start > 0:
                stream.seek(self.start - 1)
                if stream.read(1) != b"\n":
                    stream.readline()  # the rest of a line that started in the block before
            while (pos := stream.tell()) < self.end:
                raw = stream.readline()
                if not raw:
                    break
                where = f"{self.path}: line at byte {pos}"
                if self.kind == "jsonl":
                    text = _jsonl_text(raw, where, self.text_field)
                    if text is not _BLANK:
                        texts.append(text)  # type: ignore[arg-type]  # str | None here
                else:
                    texts.append(_utf8(raw, where).rstrip("\r\n"))
            return texts, stream.tell() - self.start


class WholeFile:
    """A file read whole (plain text by file or paragraph): one document, or unknown many."""

    def __init__(self, path: Path, kind: InputFormat, reader: CorpusReader) -> None:
        self.path, self.kind, self.reader = path, kind, reader
        self.nbytes = self.cost = path.stat().st_size
        self.rows = 1 if kind == "text" and reader.text_unit == "file" else None

    def read(self, rows: np.ndarray | None) -> tuple[list[str | None], int]:
        return list(self.reader._read(self.path, self.kind)), self.nbytes


class RowGroup:
    """A Parquet row group: its rows from the footer; a read decodes its text column chunk."""

    def __init__(self, path: Path, index: int, rows: int, nbytes: int, text_field: str) -> None:
        self.path, self.index, self.rows, self.text_field = path, index, rows, text_field
        self.nbytes = self.cost = nbytes

    def read(self, rows: np.ndarray | None) -> tuple[list[str | None], int]:
        import pyarrow as pa

        parquet = _parquet_file(self.path, str(self.path), self.text_field)
        try:
            column = parquet.read_row_group(self.index, columns=[self.text_field]).column(0)
        except pa.ArrowException as exc:
            raise InputError(f"{self.path}: Parquet data is unreadable ({exc})") from None
        if rows is not None:
            column = column.take(rows)
        return column.to_pylist(), self.nbytes


class ArrowBatch:
    """A record batch of a memory-mapped `save_to_disk` dataset: reading rows touches only their
    pages (counted as at least one 4 KiB page each, plus one for the offsets)."""

    cost = 0

    def __init__(self, values: Any, where: str, text_field: str) -> None:
        self.values, self.where, self.text_field = values, where, text_field
        self.rows = len(values)
        self.nbytes = int(values.nbytes)

    def read(self, rows: np.ndarray | None) -> tuple[list[str | None], int]:
        picked = self.values if rows is None else self.values.take(rows)
        texts = picked.to_pylist()
        spent = PAGE + sum(max(PAGE, len(t.encode("utf-8")) if t else 0) for t in texts)
        spent = min(spent, self.nbytes)  # never more than the whole batch
        for i, t in enumerate(texts):
            row = i if rows is None else int(rows[i])
            _text_value(t, f"{self.where} row {row}", self.text_field)
        return texts, spent


def pieces_of(reader: CorpusReader, block_bytes: int) -> list[Piece]:
    """What a two-stage sample of `reader` draws from: byte blocks of JSONL and line-text
    files, Parquet row groups, Arrow record batches of datasets folders, other files whole."""
    import pyarrow as pa

    out: list[Piece] = []
    for path, kind in reader.files:
        if kind == "hf":
            dataset = _hf_dataset(path, text_field=reader.text_field, split=reader.split)
            column = dataset.data.table.column(reader.text_field)
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                raise InputError(
                    f"{path}: column {reader.text_field!r} holds {column.type}, expected text"
                )
            out.extend(
                ArrowBatch(chunk, f"{path} batch {i}", reader.text_field)
                for i, chunk in enumerate(column.chunks)
            )
            continue
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a {kind} file")
        size = path.stat().st_size
        if kind == "parquet":
            parquet = _parquet_file(path, str(path), reader.text_field)
            meta = parquet.metadata
            col = parquet.schema_arrow.names.index(reader.text_field)
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                chunk = group.column(col).total_compressed_size
                out.append(RowGroup(path, g, group.num_rows, chunk, reader.text_field))
        elif kind == "jsonl" or (kind == "text" and reader.text_unit == "line"):
            n = max(1, round(size / block_bytes))
            edges = [size * i // n for i in range(n + 1)]
            out.extend(LineBlock(path, a, b, reader, kind) for a, b in itertools.pairwise(edges))
        elif size:
            out.append(WholeFile(path, kind, reader))
    return out
