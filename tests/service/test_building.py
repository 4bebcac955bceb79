"""Reference builds that stream, survive a kill -9 and resume; appends that write only what is new.

Real text (BBC News) and the real model's vectors throughout; the kill is a real SIGKILL of a real
`collapse-guard reference build` process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from detectors.errors import EmptyCorpusError
from detectors.reference import ReferenceCorpus
from service.audit import build_reference
from service.settings import Settings
from service.staging import StagingExistsError, StagingMismatchError, staging_folder
from service.store import Store
from tests.service.test_audit import CachedEmbedder

CLI = [sys.executable, "-m", "service.cli"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def embed(embed_cached, bbc_sample_vectors):
    """The session's cache, primed with `bbc_sample` in one call (shared with other tests):
    the builds here embed it in chunks, which then cost nothing."""
    return embed_cached


class CountingEmbedder(CachedEmbedder):
    """The real model's vectors (through the test cache), counting what it is asked to embed;
    `fail_after` documents, it raises as a crash would."""

    def __init__(self, embed, fail_after: int | None = None) -> None:
        super().__init__(embed)
        self.fail_after = fail_after
        self.embedded = 0

    def embed(self, texts, *, progress=None):
        if self.fail_after is not None and self.embedded + len(texts) > self.fail_after:
            raise RuntimeError("the machine went down")
        result = super().embed(texts, progress=progress)
        self.embedded += len(texts)
        return result


def _other_reference(store: Store, texts: list[str], vectors: np.ndarray) -> None:
    reference = ReferenceCorpus(model="all-MiniLM-L6-v2").fit(vectors, texts=texts)
    store.create_reference("other", texts, vectors, reference)


def _manifest(data: Path, name: str) -> dict:
    return json.loads((staging_folder(data, name) / "manifest.json").read_text())


@pytest.mark.slow
def test_killed_build_resumes_from_its_last_chunk(tmp_path, bbc_sample, bbc_sample_vectors):
    texts, straight = bbc_sample[:400], bbc_sample_vectors[:400]
    data = tmp_path / "data"
    with Store(Settings(data_dir=data)) as store:
        _other_reference(store, bbc_sample[1000:1100], bbc_sample_vectors[1000:1100])
    source = tmp_path / "ref.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    env = {**os.environ, "COLLAPSE_GUARD_DATA_DIR": str(data), "COLUMNS": "200"}
    build = [*CLI, "reference", "build", "bbc", str(source), "--chunk-size", "80"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*build, *extra], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
        )

    # Killed (SIGKILL: no clean-up runs) once at least one chunk is staged.
    proc = subprocess.Popen(
        build, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if _manifest(data, "bbc")["chunks"]:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    staged = _manifest(data, "bbc")["chunks"]
    assert 1 <= len(staged) < 5
    first_chunk = staging_folder(data, "bbc") / staged[0]["texts"]
    first_inode = first_chunk.stat().st_ino

    # Without --resume: refused, saying what to pass (before the model loads).
    again = run("--quiet")
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "--resume" in again.stderr and "--restart" in again.stderr

    # The input changed: refused in one line naming the change; nothing staged is lost.
    stat = source.stat()
    original = source.read_bytes()
    with source.open("a") as fh:
        fh.write(json.dumps({"text": "A document added after the build was killed."}) + "\n")
    changed = run("--resume", "--quiet")
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1, changed.stderr
    assert "cannot resume" in changed.stderr and "changed size" in changed.stderr
    assert "--restart" in changed.stderr and "Traceback" not in changed.stderr
    assert _manifest(data, "bbc")["chunks"] == staged
    source.write_bytes(original)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    resumed = run("--resume")
    assert resumed.returncode == 0, resumed.stderr
    n = sum(c["n"] for c in staged)
    assert f"resuming 'bbc': {len(staged)} staged chunk(s), {n} documents" in resumed.stdout

    with Store(Settings(data_dir=data)) as store:
        assert store.reference_texts("bbc") == texts  # every document once, in input order
        vectors = store.reference_vectors("bbc")
        np.testing.assert_allclose(vectors, straight, atol=1e-3)  # bf16 worst case; 0 measured
        # The staged chunk became part 0 of the reference by a hard link: not embedded again.
        part = store.reference_parts("bbc")[0]
        assert part.texts.stat().st_ino == first_inode
        _, reference = store.load_reference("bbc")
        assert len(reference) == 400
        # Nothing already stored is lost.
        assert {r.name for r in store.list_references()} == {"bbc", "other"}
        assert store.reference_texts("other") == bbc_sample[1000:1100]
    assert not staging_folder(data, "bbc").exists()


def test_a_crashed_build_resumes_in_process_and_embeds_only_the_rest(tmp_path, bbc_sample, embed):
    settings = Settings(data_dir=tmp_path)
    texts = bbc_sample[:250]
    with Store(settings) as store:
        crashing = CountingEmbedder(embed, fail_after=120)
        with pytest.raises(RuntimeError, match="went down"):
            build_reference(
                store, "bbc", iter(texts), embedder=crashing, settings=settings, chunk_documents=50
            )
        assert [c["n"] for c in _manifest(tmp_path, "bbc")["chunks"]] == [50, 50]
        # A half-written chunk is ignored on resume (it is not in the manifest).
        (staging_folder(tmp_path, "bbc") / "texts-00002.jsonl").write_text('"half"\n')

        with pytest.raises(StagingExistsError, match="pass --resume"):
            build_reference(store, "bbc", texts, embedder=crashing, settings=settings)
        with pytest.raises(StagingMismatchError, match="chunk size"):
            build_reference(store, "bbc", texts, embedder=crashing, settings=settings, resume=True)
        other = [*texts[:60], "Something else entirely.", *texts[61:]]
        with pytest.raises(StagingMismatchError, match="documents 51-100 of this input differ"):
            build_reference(
                store,
                "bbc",
                other,
                embedder=crashing,
                settings=settings,
                chunk_documents=50,
                resume=True,
            )
        assert len(_manifest(tmp_path, "bbc")["chunks"]) == 2  # a refused resume keeps it

        fresh = CountingEmbedder(embed)
        heard: list[str] = []
        info = build_reference(
            store,
            "bbc",
            iter(texts),
            embedder=fresh,
            settings=settings,
            chunk_documents=50,
            resume=True,
            notice=heard.append,
        )
        assert fresh.embedded == 150  # the 100 staged documents were not embedded again
        assert heard and "2 staged chunk(s), 100 documents" in heard[0]
        assert info.size == 250 and store.reference_texts("bbc") == texts
        np.testing.assert_array_equal(store.reference_vectors("bbc"), embed(texts))
        assert len(store.reference_parts("bbc")) == 5
        assert not staging_folder(tmp_path, "bbc").exists()


def test_a_refused_input_removes_its_staging_and_restart_discards_one(tmp_path, bbc_sample, embed):
    settings = Settings(data_dir=tmp_path)
    with Store(settings) as store:
        embedder = CountingEmbedder(embed)
        bad = [*bbc_sample[:60], "   "]
        with pytest.raises(EmptyCorpusError, match="document 60 is empty"):
            build_reference(
                store, "x", bad, embedder=embedder, settings=settings, chunk_documents=50
            )
        assert not staging_folder(tmp_path, "x").exists()  # no resume could get past it

        crashing = CountingEmbedder(embed, fail_after=60)
        with pytest.raises(RuntimeError):
            build_reference(
                store,
                "x",
                bbc_sample[:100],
                embedder=crashing,
                settings=settings,
                chunk_documents=50,
            )
        info = build_reference(
            store, "x", bbc_sample[100:160], embedder=embedder, settings=settings, restart=True
        )
        assert store.reference_texts("x") == bbc_sample[100:160] and info.size == 60


def test_append_writes_only_the_new_part(tmp_path, bbc_sample, embed):
    settings = Settings(data_dir=tmp_path)
    with Store(settings) as store:
        embedder = CountingEmbedder(embed)
        build_reference(
            store,
            "bbc",
            bbc_sample[:200],
            embedder=embedder,
            settings=settings,
            chunk_documents=100,
        )
        info = store.reference_info("bbc")
        data = store.reference_parts("bbc")
        corpus = (tmp_path / "references" / info.id).resolve()
        before = {
            p: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in [*(x.texts for x in data), *(x.vectors for x in data), *corpus.iterdir()]
        }
        _, loaded = store.load_reference("bbc")
        assert store.load_reference("bbc")[1] is loaded  # kept loaded between audits
        store.append_reference("bbc", bbc_sample[200:260], embed(bbc_sample[200:260]))
        assert len(loaded) == 200  # the append grew a copy, not the loaded version

        grown = store.reference_parts("bbc")
        assert len(grown) == 3 and grown[2].n_documents == 60
        for old, new in zip(data, grown, strict=False):
            for a, b in ((old.texts, new.texts), (old.vectors, new.vectors)):
                assert (b.stat().st_ino, b.stat().st_mtime_ns) == before[a]  # linked, unwritten
        new_corpus = (tmp_path / "references" / store.reference_info("bbc").id).resolve()
        for name in ("vectors-0000.npy", "holdout-0000.npy", "snippets-0000.json"):
            assert (new_corpus / name).stat().st_ino == before[corpus / name][0]
        assert store.reference_texts("bbc") == bbc_sample[:260]
        np.testing.assert_array_equal(store.reference_vectors("bbc"), embed(bbc_sample[:260]))
        # A sample reads only the parts that hold it, across part boundaries, in input order.
        picks = np.array([0, 99, 100, 205, 259])
        texts, vectors = store.reference_documents("bbc", picks)
        assert texts == [bbc_sample[i] for i in picks]
        np.testing.assert_array_equal(vectors, embed(bbc_sample[:260])[picks])
        with pytest.raises(ValueError, match="outside the reference's 260 documents"):
            store.reference_documents("bbc", np.array([3, 260]))
        _, reference = store.load_reference("bbc")
        assert len(reference) == 260
    # and it all survives a reopen (the old version's files are gone, the links hold the data)
    with Store(settings) as store:
        assert store.reference_texts("bbc") == bbc_sample[:260]
        assert not (tmp_path / "references" / f"{info.id}.data").exists()


def test_a_reference_stored_before_parts_loads_and_appends(tmp_path, bbc_sample, embed):
    """The old layout: `<id>.texts.jsonl` and `<id>.vectors.npy` beside the reference folder."""
    settings = Settings(data_dir=tmp_path)
    texts, vectors = bbc_sample[:120], embed(bbc_sample[:120])
    with Store(settings) as store:
        reference = ReferenceCorpus(model="all-MiniLM-L6-v2").fit(vectors, texts=texts)
        info = store.create_reference("old", texts, vectors, reference)
        refs = tmp_path / "references"
        folder = refs / f"{info.id}.data"
        os.replace(folder / "texts-00000.jsonl", refs / f"{info.id}.texts.jsonl")
        os.replace(folder / "vectors-00000.npy", refs / f"{info.id}.vectors.npy")
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()
    with Store(settings) as store:
        assert store.reference_texts("old") == texts
        np.testing.assert_array_equal(store.reference_vectors("old"), vectors)
        inode = (refs / f"{info.id}.vectors.npy").stat().st_ino
        store.append_reference("old", bbc_sample[120:150], embed(bbc_sample[120:150]))
        parts = store.reference_parts("old")
        assert parts[0].vectors.stat().st_ino == inode and len(parts) == 2
        assert store.reference_texts("old") == bbc_sample[:150]
        assert not (refs / f"{info.id}.vectors.npy").exists()  # the old version is removed
