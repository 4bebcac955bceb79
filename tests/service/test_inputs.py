"""Corpus readers on real BBC News / Wikipedia text written to temporary files in each format."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.errors import EmptyCorpusError, InvalidInputError
from service.inputs import (
    BATCH_ROWS,
    CorpusReader,
    InputError,
    InputNotFoundError,
    read_documents,
)


@pytest.fixture(scope="module")
def bbc_texts(bbc_docs) -> list[str]:
    return [d.text for d in bbc_docs]


@pytest.fixture(scope="module")
def wiki_texts(wiki_docs) -> list[str]:
    return [d.text for d in wiki_docs[:300]]


def write_jsonl(path, records) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ JSONL
def test_jsonl_round_trip_keeps_order_and_skips_blank_lines(tmp_path, bbc_texts):
    path = tmp_path / "bbc.jsonl"
    write_jsonl(path, [{"text": t, "id": i} for i, t in enumerate(bbc_texts[:300])])
    with path.open("a") as f:
        f.write("\n   \n")  # trailing blank lines are not documents
    reader = CorpusReader([path])
    assert list(reader) == bbc_texts[:300]
    assert (reader.n_documents, reader.n_empty) == (300, 0)


def test_jsonl_custom_field_and_empty_documents_are_skipped_and_counted(tmp_path, wiki_texts):
    path = tmp_path / "wiki.ndjson"
    records = [{"body": t} for t in wiki_texts[:50]]
    records[3] = {"body": ""}
    records[10] = {"body": None}
    records[20] = {"body": "   \t "}
    write_jsonl(path, records)
    reader = CorpusReader([path], text_field="body")
    docs = list(reader)
    expected = [t for i, t in enumerate(wiki_texts[:50]) if i not in (3, 10, 20)]
    assert docs == expected
    assert (reader.n_documents, reader.n_empty) == (47, 3)


def test_jsonl_wrong_field_names_the_line_and_lists_the_fields(tmp_path, bbc_texts):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, [{"content": t, "source": "bbc"} for t in bbc_texts[:3]])
    with pytest.raises(InputError) as err:
        list(CorpusReader([path]))
    msg = str(err.value)
    assert f"{path}:1" in msg and "'text'" in msg and "'content', 'source'" in msg
    assert "--text-field" in msg


def test_jsonl_is_streamed_errors_surface_only_when_reached(tmp_path, bbc_texts):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, [{"text": t} for t in bbc_texts[:2]])
    with path.open("a") as f:
        f.write('{"text": "unterminated\n')
    docs = iter(CorpusReader([path]))
    assert next(docs) == bbc_texts[0] and next(docs) == bbc_texts[1]
    with pytest.raises(InputError, match=r"c\.jsonl:3: not valid JSON"):
        next(docs)


def test_jsonl_non_utf8_line_is_named(tmp_path, bbc_texts):
    path = tmp_path / "latin.jsonl"
    write_jsonl(path, [{"text": t} for t in bbc_texts[:4]])
    with path.open("ab") as f:
        f.write(json.dumps({"text": "Caf\u00e9 society"}).encode().replace(b"\\u00e9", b"\xe9"))
    with pytest.raises(InputError, match=r"latin\.jsonl:5: not valid UTF-8 \(byte 0xe9"):
        list(CorpusReader([path]))


def test_jsonl_lone_surrogate_is_named_with_its_line_and_position(tmp_path, bbc_texts):
    """`"\\ud800"` is a valid JSON escape but no Unicode text: named, not a crash later."""
    path = tmp_path / "broken.jsonl"
    write_jsonl(path, [{"text": t} for t in bbc_texts[:2]])
    with path.open("ab") as f:
        f.write(b'{"text": "a truncated emoji \\ud83d"}\n')
    with pytest.raises(
        InputError,
        match=r"broken\.jsonl:3: field 'text' holds a lone UTF-16 surrogate "
        r"\(\\ud83d\) at character 18",
    ):
        list(CorpusReader([path]))


def test_jsonl_non_object_and_non_text_values_are_rejected(tmp_path):
    arr = tmp_path / "a.jsonl"
    arr.write_text('["a list, not an object"]\n')
    with pytest.raises(InputError, match="expected a JSON object"):
        list(CorpusReader([arr]))
    num = tmp_path / "n.jsonl"
    num.write_text('{"text": 42}\n')
    with pytest.raises(InputError, match="'text' holds int, expected text"):
        list(CorpusReader([num]))


# ------------------------------------------------------------------ Parquet
def test_parquet_is_read_in_batches_across_row_groups(tmp_path, bbc_texts):
    path = tmp_path / "bbc.parquet"
    table = pa.table({"id": list(range(len(bbc_texts))), "article": bbc_texts})
    pq.write_table(table, path, row_group_size=500)
    assert len(bbc_texts) > 2 * BATCH_ROWS  # several batches and row groups are crossed
    reader = CorpusReader([path], text_field="article")
    assert list(reader) == bbc_texts
    assert reader.n_documents == len(bbc_texts)


def test_parquet_nulls_are_skipped_and_wrong_column_lists_columns(tmp_path, bbc_texts):
    path = tmp_path / "x.pq"
    pq.write_table(pa.table({"text": [bbc_texts[0], None, bbc_texts[1]], "n": [1, 2, 3]}), path)
    reader = CorpusReader([path])
    assert list(reader) == bbc_texts[:2] and reader.n_empty == 1
    with pytest.raises(InputError, match=r"no column 'body' \(columns: 'text', 'n'\)"):
        list(CorpusReader([path], text_field="body"))
    with pytest.raises(InputError, match="column 'n' holds int64, expected text"):
        list(CorpusReader([path], text_field="n"))


def test_garbage_with_a_parquet_name_is_an_unreadable_format(tmp_path, bbc_texts):
    path = tmp_path / "fake.parquet"
    path.write_text(bbc_texts[0])
    with pytest.raises(InputError, match=r"fake\.parquet: not a readable Parquet file"):
        list(CorpusReader([path]))


# ------------------------------------------------------------------ plain text
def test_folder_of_text_files_is_one_document_per_file(tmp_path, bbc_texts):
    folder = tmp_path / "bbc"
    (folder / "sub").mkdir(parents=True)
    for i, text in enumerate(bbc_texts[:30]):
        # Zero-padded names: sorted order is the written order, across the sub-folder too.
        (folder / ("sub" if i >= 20 else "") / f"{i:03d}.txt").write_text(text)
    (folder / ".hidden.txt").write_text("not a document")
    reader = CorpusReader([folder])
    assert list(reader) == bbc_texts[:30]


def test_text_file_per_line_and_per_paragraph(tmp_path, wiki_texts):
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(wiki_texts[:40]) + "\n")
    assert read_documents([lines], text_unit="line") == wiki_texts[:40]
    assert read_documents([lines]) == ["\n".join(wiki_texts[:40]) + "\n"]  # one file, one doc

    paras = tmp_path / "paras.md"
    # Each paragraph hard-wrapped over several lines, separated by blank lines.
    wrapped = ["\n".join(t[i : i + 80] for i in range(0, len(t), 80)) for t in wiki_texts[:25]]
    paras.write_text("\n\n\n".join(wrapped))
    docs = read_documents([paras], text_unit="paragraph")
    assert len(docs) == 25
    # Wrapping lines are rejoined with a space, so the words survive in order.
    assert [d.replace(" ", "") for d in docs] == [t.replace(" ", "") for t in wiki_texts[:25]]


def test_non_utf8_text_file_is_named(tmp_path, bbc_texts):
    good = tmp_path / "a.txt"
    good.write_text(bbc_texts[0])
    bad = tmp_path / "b.txt"
    bad.write_bytes(bbc_texts[1].encode("cp1252") + b" \x93quoted\x94")
    with pytest.raises(InputError, match=r"b\.txt: not valid UTF-8 \(byte 0x93"):
        list(CorpusReader([good, bad]))
    with pytest.raises(InputError, match=r"b\.txt:1: not valid UTF-8"):
        list(CorpusReader([bad], text_unit="line"))


def test_unknown_extension_in_a_folder_says_how_to_fix_it(tmp_path, bbc_texts):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.txt").write_text(bbc_texts[0])
    (folder / "b.csv").write_text(bbc_texts[1])
    with pytest.raises(InputError, match=r"b\.csv: unknown format .*--format"):
        CorpusReader([folder])
    assert read_documents([folder], format="text") == bbc_texts[:2]


# ------------------------------------------------------------------ Hugging Face datasets
def test_hf_dataset_saved_to_disk(tmp_path, bbc_texts, wiki_texts):
    datasets = pytest.importorskip("datasets", reason="datasets is a runtime dependency")
    datasets.disable_progress_bars()
    single = tmp_path / "bbc_ds"
    datasets.Dataset.from_dict({"text": bbc_texts[:200], "label": [0] * 200}).save_to_disk(single)
    assert read_documents([single]) == bbc_texts[:200]
    with pytest.raises(InputError, match=r"no column 'body' \(columns: 'text', 'label'\)"):
        list(CorpusReader([single], text_field="body"))

    both = tmp_path / "dict_ds"
    datasets.DatasetDict(
        {
            "bbc": datasets.Dataset.from_dict({"text": bbc_texts[:20]}),
            "wiki": datasets.Dataset.from_dict({"text": wiki_texts[:30]}),
        }
    ).save_to_disk(both)
    with pytest.raises(InputError, match=r"splits 'bbc', 'wiki'; pick one with --split"):
        list(CorpusReader([both]))
    assert read_documents([both], split="wiki") == wiki_texts[:30]
    with pytest.raises(InputError, match="no split 'test'"):
        list(CorpusReader([both], split="test"))


# ------------------------------------------------------------------ general
def test_missing_path_and_empty_corpus_and_bad_options(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"nope\.jsonl: no such file"):
        CorpusReader([tmp_path / "nope.jsonl"])
    blank = tmp_path / "blank.jsonl"
    write_jsonl(blank, [{"text": ""}, {"text": "  "}])
    with pytest.raises(EmptyCorpusError, match="2 empty documents skipped"):
        list(CorpusReader([blank]))
    with pytest.raises(InputError, match="unknown text unit"):
        CorpusReader([blank], text_unit="sentence")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no input files"):
        CorpusReader([])
    assert issubclass(InputError, InvalidInputError)  # the service maps it to a 4xx


def test_progress_reports_bytes_up_to_the_total(tmp_path, bbc_texts):
    files = []
    for i in range(3):
        path = tmp_path / f"part{i}.jsonl"
        write_jsonl(path, [{"text": t} for t in bbc_texts[i * 10 : (i + 1) * 10]])
        files.append(path)
    seen: list[tuple[int, int]] = []
    reader = CorpusReader(files, progress=lambda done, total: seen.append((done, total)))
    assert len(list(reader)) == 30
    total = sum(p.stat().st_size for p in files)
    assert [t for _, t in seen] == [total] * 3
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == total


def test_progress_advances_inside_one_large_jsonl_file(tmp_path, bbc_texts):
    path = tmp_path / "big.jsonl"
    write_jsonl(path, [{"text": t} for t in bbc_texts])  # 2,225 documents in one file
    seen: list[int] = []
    reader = CorpusReader([path], progress=lambda done, total: seen.append(done))
    assert len(list(reader)) == len(bbc_texts)
    size = path.stat().st_size
    # Reports after 1,000 and 2,000 documents, then the end of the file.
    assert len(seen) == 3 and seen[-1] == size
    assert 0 < seen[0] < seen[1] < size
