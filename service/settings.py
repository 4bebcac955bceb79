"""The one place configuration comes from: environment variables prefixed COLLAPSE_GUARD_.

Nested values use a double underscore, e.g. COLLAPSE_GUARD_POLICY__MAX_SYNTHETIC_FRACTION=0.2.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from detectors.errors import InvalidInputError
from service.policy import Policy

ENV_PREFIX = "COLLAPSE_GUARD_"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path.home() / ".local" / "share" / "collapse-guard",
        description="SQLite metadata and one folder per reference live here.",
    )
    embedding_model: str | None = Field(
        default=None,
        description="A local sentence-transformers folder; unset = bundled all-MiniLM-L6-v2.",
    )
    embedding_precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="The encoder's matrix arithmetic: auto = bfloat16 where the CPU has native "
        "bfloat16 instructions (1.8x faster, cosine > 0.9999 to float32), float32 elsewhere.",
    )
    audit_size: int = Field(
        default=5000,
        ge=20,
        description="Candidates larger than this are audited on a uniform random sample.",
    )
    loaded_references: int = Field(
        default=2,
        ge=0,
        description="References kept loaded in memory between audits, most recently used "
        "(0: load at every audit). A million-document reference holds ~1.9 GB and loads in "
        "seconds.",
    )
    full_read_bytes: int = Field(
        default=256 * 2**20,
        ge=0,
        description="Candidates of at most this many bytes on disk are read whole for an exact "
        "uniform sample; larger ones (a folder of shards, a big JSONL, Parquet, a datasets "
        "folder) get a two-stage sample: byte blocks, row groups or record batches drawn by "
        "size, documents within them, reading a sliver (the audit states the bytes read and the "
        "design effect the clustering costs).",
    )
    sample_block_bytes: int = Field(
        default=16 * 2**10,
        ge=1024,
        description="Bytes per block a two-stage sample cuts JSONL and line-text files into "
        "(smaller: less clustering, more seeks).",
    )
    synthetic_examples: Path | None = Field(
        default=None,
        description="JSONL of generated text (one object with a 'text' field per line, and "
        "optionally a 'stratum' naming its source, e.g. 'news' or 'wikipedia': sources mostly off "
        "the reference's domain are then left out whole) that the synthetic-fraction estimator "
        "learns the signature of generation from; unset = the "
        "bundled SmolLM2-135M continuations of BBC News and Wikipedia text. Best: continuations "
        "of your own reference's documents (scripts/generate_synthetic.py).",
    )
    synthetic_method: Literal["curvature", "binoculars", "embedding"] = Field(
        default="curvature",
        description="What the synthetic fraction is read from: curvature = the scorer's "
        "conditional probability curvature (Fast-DetectGPT; holds across outlets and genres); "
        "binoculars = the Binoculars score of the scorer (observer) and "
        "BINOCULARS_PERFORMER, two models that share a tokenizer; embedding = the embedding "
        "signature (reads human text of another outlet as generated).",
    )
    scorer: str = Field(
        default="smollm2-135m",
        description="The language model the synthetic fraction reads text with: smollm2-135m "
        "(bundled), gemma3-270m (bundled; Gemma terms of use), or the path of a local Hugging "
        "Face model folder or .gguf file (a 7B model on a GPU sees far more of what large chat "
        "models write than a small one on a CPU).",
    )
    scorer_device: Literal["cpu", "cuda"] = Field(
        default="cpu", description="Where the scorer runs: cpu, or cuda (a GPU)."
    )
    binoculars_performer: str | None = Field(
        default=None,
        description="The second model of the Binoculars score (a bundled name or a path; it "
        "must share the scorer's tokenizer), e.g. the instruction-tuned sibling of the scorer.",
    )
    curvature_documents: int = Field(
        default=200,
        ge=20,
        description="Audit documents the language model scores (a seeded subsample; its "
        "sampling error is in the interval). More: a narrower interval, ~0.3 s each on 2 cores.",
    )
    curvature_reference_documents: int = Field(
        default=300, ge=20, description="Reference documents scored once per reference."
    )
    curvature_tokens: int = Field(
        default=96, ge=16, le=512, description="Tokens scored per document (its first ones)."
    )
    model_cache_dir: Path | None = Field(
        default=Path.home() / ".cache" / "collapse-guard",
        description="Where the scorer keeps its dequantised copy of SmolLM2-135M after the "
        "first load (~540 MB; loads in under a second instead of ~20 s). Unset: no cache.",
    )
    build_chunk_documents: int = Field(
        default=4096,
        ge=1,
        description="Documents a reference build embeds and stages on disk at a time (about a "
        "minute of embedding on 2 cores): a killed build resumes from its last whole chunk "
        "(`reference build --resume`; a REST build job resumes when the service restarts).",
    )
    forecast_processes: int = Field(
        default_factory=lambda: min(usable_cores(), 8),
        ge=1,
        le=64,
        description="Processes an audit's forecast and top-up search run their chains on (this "
        "one and persistent spawned workers; the same numbers with any count). Default: the "
        "usable cores, at most 8.",
    )
    edge_seeds: int = Field(
        default=32,
        ge=0,
        le=256,
        description="Seeds an audit forecasts again with when its plan has fewer and its "
        "verdict rests on the largest allowed top-up's forecast near the target (within two "
        "half-widths of its interval; `service.audit.more_seeds`): at 8 seeds two random "
        "states could give opposite verdicts there, at 32 none did "
        "(benchmarks/verdict_edge.py). 0: never forecast again.",
    )
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    tail_quantile: float = Field(default=0.1, gt=0, lt=1)
    policy: Policy = Field(default_factory=Policy)
    random_state: int = 0

    # --- the REST service (`collapse-guard serve`) ---
    api_keys: dict[str, Literal["read", "write"]] = Field(
        default_factory=dict,
        description="SHA-256 hex digests of API keys -> role, e.g. "
        'COLLAPSE_GUARD_API_KEYS=\'{"<sha256 of key>": "write"}\' (`collapse-guard hash-key` '
        "prints a digest). Empty = no authentication: only for a service bound to loopback.",
    )
    max_body_bytes: int = Field(default=64 * 2**20, ge=1024, description="Request body limit.")
    max_documents: int = Field(default=200_000, ge=1, description="Documents per request.")
    max_document_chars: int = Field(default=200_000, ge=1, description="Characters per document.")
    sync_documents: int = Field(
        default=2_000,
        ge=1,
        description="Requests with more documents than this run as background jobs (202).",
    )
    workers: int = Field(default=1, ge=1, description="Threads running CPU-bound work.")
    queue_size: int = Field(
        default=4, ge=0, description="Work waiting beyond the workers before answers are 429."
    )
    # What-if forecasts take milliseconds; behind a minutes-long audit in one queue they would
    # wait for it (measured: p99 17 s instead of 0.1 s). They get their own bounded lane.
    forecast_workers: int = Field(default=1, ge=1, description="Threads running forecasts.")
    forecast_queue_size: int = Field(
        default=16, ge=0, description="Forecasts waiting beyond their workers before 429."
    )

    @field_validator("scorer", "binoculars_performer")
    @classmethod
    def _model_exists(cls, value: str | None) -> str | None:
        from detectors.synthetic.models import BUNDLED

        if value is None or value in BUNDLED or Path(value).expanduser().exists():
            return value
        raise ValueError(
            f"{value!r} is neither a bundled scorer ({', '.join(BUNDLED)}) nor an existing "
            "path: give a local Hugging Face model folder or a .gguf file"
        )

    @model_validator(mode="after")
    def _binoculars_has_two_models(self) -> Settings:
        if self.synthetic_method == "binoculars" and not self.binoculars_performer:
            raise ValueError(
                "synthetic_method binoculars needs COLLAPSE_GUARD_BINOCULARS_PERFORMER: the "
                "second model (sharing the scorer's tokenizer), e.g. a local folder path"
            )
        return self

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_from_environment(cls, value: object) -> object:
        # Environment variables are strings; Policy is strict for REST bodies, so parse them here.
        return Policy.model_validate(value, strict=False) if isinstance(value, dict) else value


# Settings read from the environment as JSON, with a valid value to show when one does not parse.
JSON_EXAMPLES = {
    "api_keys": '{"<sha256 of key, from collapse-guard hash-key>": "write"}',
    "policy": '{"max_synthetic_fraction": 0.2}',
}


def load_settings() -> Settings:
    """`Settings` from the environment; a bad value raises InvalidInputError naming its variable
    (one line for the CLI, not pydantic's traceback)."""
    try:
        return Settings()
    except SettingsError as exc:
        # pydantic-settings decodes complex fields (a dict, a model) as JSON before validating,
        # and its error names the field, not the variable, with no example.
        found = re.search(r'field "(\w+)"', str(exc))
        field = found.group(1) if found else None
        variable = f"{ENV_PREFIX}{field.upper()}" if field else f"a {ENV_PREFIX}* variable"
        example = JSON_EXAMPLES.get(field or "", "")
        raise InvalidInputError(
            f"bad setting: {variable} is not valid JSON"
            + (f"; for example {variable}='{example}'" if example else "")
        ) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'__'.join(map(str, e['loc'])).upper()}: {e['msg']}" + _example(e["loc"])
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise InvalidInputError(f"bad setting: {problems}") from None


def _example(loc: tuple) -> str:
    """A valid value of the setting at `loc` to show beside its error: its default, when that
    is a plain number, word or flag (a top-level setting or a policy field)."""
    fields = {**Settings.model_fields, **{f"policy.{k}": v for k, v in Policy.model_fields.items()}}
    key = ".".join(map(str, loc[:2])) if loc[0] == "policy" and len(loc) > 1 else str(loc[0])
    field = fields.get(key)
    default = None if field is None else field.default
    if isinstance(default, bool):
        return f" (for example {str(default).lower()}, the default)"
    if isinstance(default, int | float | str) and default != "":
        return f" (for example {default}, the default)"
    return ""
