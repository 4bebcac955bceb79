"""Two-stage samples of sharded corpora on disk (real BBC News text): JSONL byte blocks, Parquet
row groups, `save_to_disk` Arrow batches; small inputs keep the exact full read."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import norm

from detectors.sampling import reservoir_sample
from detectors.shard_sampling import proportion_interval
from service.inputs import CorpusReader, InputError


def write_jsonl(path, texts) -> None:
    with path.open("w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")


@pytest.fixture(scope="module")
def varied(bbc_docs) -> list[str]:
    """300 real articles cut to lengths from 20 to 3,000 characters (150-fold)."""
    rng = np.random.default_rng(0)
    return [
        d.text[: int(rng.integers(20, 3000))].strip() + f" #{i}"
        for i, d in enumerate(bbc_docs[:300])
    ]


@pytest.mark.parametrize("block", [64, 1000, 20_000])
def test_every_line_is_in_exactly_one_block(tmp_path, varied, block):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, varied)
    reader = CorpusReader([path])
    lines: list[str | None] = []
    spent = 0
    for piece in reader.pieces(block):
        texts, nbytes = piece.read(None)
        lines.extend(texts)
        spent += nbytes
    assert lines == varied
    # a block re-reads the end of the line under way at its start (to find the next one)
    assert spent >= path.stat().st_size
    if block > 3000:  # longer than any line: little is read twice
        assert spent < 1.2 * path.stat().st_size


def test_byte_block_sampling_is_uniform_over_lines_and_offset_sampling_is_not(tmp_path, varied):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, varied)
    reader = CorpusReader([path])
    reps, counts, total = 1500, dict.fromkeys(varied, 0), 0
    for seed in range(reps):
        s = reader.sample(20, np.random.default_rng(seed), full_read_bytes=0, block_bytes=4096)
        assert s.sampling == "two-stage"
        for t in s.texts:
            counts[t] += 1
        total += len(s.texts)
    c = np.array([counts[t] for t in varied], dtype=float)
    lengths = np.array([len(t) for t in varied], dtype=float)
    mean = total / len(varied)
    z = norm.ppf(1 - 1e-3 / (2 * len(varied)))
    assert np.all(np.abs(c - mean) <= 1.2 * z * np.sqrt(mean)), (c.min(), c.max(), mean)
    assert abs(np.corrcoef(lengths, c)[0, 1]) < 0.15

    # The naive scheme (seek to a random byte, skip to the next line start, read that line)
    # draws a line in proportion to the length of the line before it: the same check fails.
    size = path.stat().st_size
    rng = np.random.default_rng(1)
    naive = np.zeros(len(varied))
    starts = np.cumsum(
        [0] + [len(json.dumps({"text": t}, ensure_ascii=False).encode()) + 1 for t in varied]
    )
    for offset in rng.integers(0, size, int(total)):
        with path.open("rb") as f:
            f.seek(offset)
            f.readline()
            where = f.tell()
        if where < size:
            naive[np.searchsorted(starts, where)] += 1
    previous = np.roll(lengths, 1)[1:]
    assert np.any(np.abs(naive - mean) > 1.2 * z * np.sqrt(mean))
    assert np.corrcoef(previous, naive[1:])[0, 1] > 0.5


def test_known_composition_across_shards_is_estimated_without_bias(tmp_path, bbc_docs):
    # 24 JSONL shards of 5-60 real articles; shard s holds sport articles in share s/23 and the
    # rest from the other categories: the sport share of the whole corpus is known exactly.
    sport = [d.text for d in bbc_docs if d.source.startswith("bbc/sports/")]
    other = [d.text for d in bbc_docs if not d.source.startswith("bbc/sports/")]
    rng = np.random.default_rng(2)
    folder = tmp_path / "shards"
    folder.mkdir()
    n_sport = n_all = 0
    for s in range(24):
        n = int(rng.integers(5, 60))
        k = round(n * s / 23)
        docs = [sport[int(i)] for i in rng.integers(0, len(sport), k)]
        docs += [other[int(i)] for i in rng.integers(0, len(other), n - k)]
        write_jsonl(folder / f"part-{s:03d}.jsonl", docs)
        n_sport, n_all = n_sport + k, n_all + n
    truth = n_sport / n_all
    sport_set = set(sport)
    reader = CorpusReader([folder])
    reps, level, covered, estimates, sizes = 200, 0.9, 0, [], []
    for seed in range(reps):
        s = reader.sample(60, np.random.default_rng(seed), full_read_bytes=0, block_bytes=16_384)
        y = np.array([t in sport_set for t in s.texts], dtype=float)
        p, lo, hi = proportion_interval(y, s.clusters, level)
        estimates.append(p)
        sizes.append(s.corpus_size)
        covered += lo <= truth <= hi
        assert s.bytes_read < s.bytes_total
    e = np.array(estimates)
    assert abs(e.mean() - truth) < 4 * e.std(ddof=1) / np.sqrt(reps), (e.mean(), truth)
    assert abs(covered / reps - level) < 0.07, covered / reps  # binomial sd 0.021
    sz = np.array(sizes, dtype=float)
    assert abs(sz.mean() - n_all) < 4 * sz.std(ddof=1) / np.sqrt(reps)


def test_parquet_row_groups_give_an_exact_corpus_size(tmp_path, bbc_docs):
    texts = [d.text for d in bbc_docs[:600]]
    for i in range(3):
        pq.write_table(
            pa.table({"text": texts[i * 200 : (i + 1) * 200]}),
            tmp_path / f"p{i}.parquet",
            row_group_size=50,
        )
    reader = CorpusReader([tmp_path])
    pieces = reader.pieces(65536)
    assert [p.rows for p in pieces] == [50] * 12
    s = reader.sample(40, np.random.default_rng(3), full_read_bytes=0)
    assert s.corpus_size == 600 and s.corpus_size_exact and s.unit == "rows"
    assert set(s.texts) <= set(texts) and 20 < len(s.texts) < 70
    assert reader.n_documents == 600


def test_datasets_folder_is_sampled_by_record_batch(tmp_path, bbc_docs):
    import datasets

    datasets.disable_progress_bars()
    texts = [d.text for d in bbc_docs[:1200]]
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "ds"), num_shards=4)
    reader = CorpusReader([tmp_path / "ds"])
    s = reader.sample(50, np.random.default_rng(4), full_read_bytes=0)
    assert s.corpus_size == 1200 and s.corpus_size_exact
    assert set(s.texts) <= set(texts)
    assert s.bytes_read < s.bytes_total / 3


def test_small_inputs_keep_the_exact_full_read(tmp_path, varied):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, varied)
    s = CorpusReader([path]).sample(50, np.random.default_rng(5), full_read_bytes=10**9)
    texts, seen = reservoir_sample(CorpusReader([path]), 50, np.random.default_rng(5))
    assert s.sampling == "full read" and s.texts == texts and s.corpus_size == seen == 300
    assert s.bytes_read == s.bytes_total == path.stat().st_size


def test_a_bad_line_met_by_the_sample_names_the_file_and_byte(tmp_path, varied):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, varied[:50])
    with path.open("a") as f:
        f.write("{not json\n")
    with pytest.raises(InputError, match=r"c\.jsonl: line at byte \d+: not valid JSON"):
        CorpusReader([path]).sample(
            500, np.random.default_rng(6), full_read_bytes=0, block_bytes=10**6
        )
