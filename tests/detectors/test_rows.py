"""PartRows: staged chunks read as one matrix without joining them; a fit on it equals a fit on
the joined array."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import DimensionMismatchError, EmptyCorpusError, InvalidInputError
from detectors.reference import ReferenceCorpus
from detectors.rows import PartRows


def _parts(rng: np.random.Generator, sizes: list[int], dim: int = 8) -> list[np.ndarray]:
    return [rng.normal(size=(n, dim)).astype(np.float32) for n in sizes]


def test_take_equals_indexing_the_joined_rows(tmp_path):
    rng = np.random.default_rng(0)
    parts = _parts(rng, [5, 0, 7, 1, 4])
    for i, part in enumerate(parts):  # memory-mapped files, as a staged build reads them
        np.save(tmp_path / f"{i}.npy", part)
    paths = [tmp_path / f"{i}.npy" for i in range(len(parts))]
    joined = np.vstack(parts)
    for given in (parts, paths):  # arrays, or files mapped only while they are read
        rows = PartRows(given)
        assert rows.shape == joined.shape == (17, 8)
        for index in ([0, 4, 5, 11, 12, 16], list(range(17)), [], [16]):
            got = rows.take(np.array(index, dtype=np.int64))
            assert got.dtype == np.float32 and got.flags.c_contiguous
            np.testing.assert_array_equal(got, joined[index])


def test_take_rejects_unsorted_or_out_of_range_rows():
    rows = PartRows(_parts(np.random.default_rng(1), [3, 3]))
    for bad in ([2, 1], [-1], [6]):
        with pytest.raises(ValueError, match="ascending"):
            rows.take(np.array(bad))


def test_bad_parts_are_refused_with_the_reason():
    rng = np.random.default_rng(2)
    with pytest.raises(DimensionMismatchError, match="different dimensions"):
        PartRows([rng.normal(size=(3, 4)), rng.normal(size=(3, 5))])
    with pytest.raises(EmptyCorpusError):
        PartRows([np.empty((0, 4), dtype=np.float32)])
    with pytest.raises(InvalidInputError, match="numeric"):
        PartRows([np.array([["a", "b"]])])
    bad = _parts(rng, [4, 4])
    bad[1][2, 3] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        PartRows(bad).take(np.arange(8))


def test_reference_fitted_on_parts_equals_one_fitted_on_the_joined_array():
    rng = np.random.default_rng(3)
    parts = _parts(rng, [120, 37, 200, 43], dim=16)
    texts = [f"document {i}" for i in range(400)]
    joined = ReferenceCorpus(random_state=4).fit(np.vstack(parts), texts=texts)
    streamed = ReferenceCorpus(random_state=4).fit(PartRows(parts), texts=texts)
    np.testing.assert_array_equal(streamed.vectors_, joined.vectors_)
    np.testing.assert_array_equal(streamed.holdout_, joined.holdout_)
    np.testing.assert_array_equal(streamed.radii_, joined.radii_)
    assert streamed.snippets_ == joined.snippets_
    with pytest.raises(DimensionMismatchError):
        streamed.append(PartRows(_parts(rng, [10], dim=8)), texts=texts[:10])
    streamed.append(PartRows(_parts(rng, [30], dim=16)), texts=texts[:30])
    assert len(streamed) == 430


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_vectors_are_read_from_the_index_block_by_block_and_outlive_it(monkeypatch, kind):
    import gc

    from detectors import rows as rows_module
    from detectors.index import build_index, local_search
    from detectors.rows import index_rows

    rng = np.random.default_rng(5)
    parts = _parts(rng, [50, 31, 19], dim=16)
    joined = np.vstack(parts)
    chosen = np.sort(rng.choice(100, size=70, replace=False))
    monkeypatch.setattr(rows_module, "ADD_BLOCK", 9)  # 8 blocks of 9 rows and one of 7
    index, vectors = rows_module.indexed_rows(PartRows(parts), chosen, kind)
    np.testing.assert_array_equal(vectors, joined[chosen])
    assert not vectors.flags.writeable  # a write would change the index behind its back
    whole = build_index(joined[chosen], kind)
    np.testing.assert_array_equal(
        local_search(index, joined, 3)[1], local_search(whole, joined, 3)[1]
    )
    expected = joined[chosen].copy()
    del index, whole
    gc.collect()
    np.testing.assert_array_equal(vectors, expected)  # the array keeps its index alive
    assert index_rows(build_index(joined, "ivf")) is None  # vectors in cells: read separately


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_reserved_index_grows_in_place(kind):
    from detectors.index import build_index
    from detectors.rows import index_rows, reserve_rows

    rng = np.random.default_rng(6)
    first, rest = _parts(rng, [40, 90], dim=16)
    index = build_index(first, kind)
    reserve_rows(index, len(rest))
    at = index_rows(index).__array_interface__["data"][0]
    np.testing.assert_array_equal(index_rows(index), first)  # the stored rows are kept
    for start in range(0, len(rest), 30):
        index.add(rest[start : start + 30])
        # no reallocation, so no transient second copy of the index while it grows
        assert index_rows(index).__array_interface__["data"][0] == at
    np.testing.assert_array_equal(index_rows(index), np.vstack([first, rest]))
