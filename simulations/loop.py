"""The generation loop shared by every model: fit, sample, mix by policy, measure, repeat.

Generation g's model is fitted on generation g's data; generation 0's data is the original (or a
candidate corpus the caller passes). After each fit the model is measured against the original
distribution, then the next generation's data is built by the retraining policy:

  replace     the next data is M samples from this model (the paper's default setting),
  keep-real   round(beta * M) fresh original samples plus M - round(beta * M) model samples
              (beta = 0.1 is the paper's "10% of the original data kept"),
  accumulate  everything seen so far plus M new model samples (Gerstgrasser et al. 2024).

A model object may carry many independent chains at once (the Gaussian and categorical models are
vectorised over chains); models that are not (mixtures, language models) run one chain per seed
through `run_seeds`. Every run takes an explicit seed: the same seed gives the same trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, get_args

import numpy as np

from detectors.errors import InvalidInputError

Policy = Literal["replace", "keep-real", "accumulate"]
POLICIES: tuple[str, ...] = get_args(Policy)
ProgressCallback = Callable[[int, int], None]  # (generations done, generations total)

DataT = TypeVar("DataT")


class GenerativeModel(Protocol[DataT]):
    """What the loop needs from a model. `DataT` is the model's own data type (arrays, counts,
    sufficient statistics, token blocks); every method works on all of the model's chains."""

    n_chains: int

    def sample_original(self, n: int, rng: np.random.Generator) -> DataT:
        """n fresh draws from the original (human) distribution, for every chain."""
        ...

    def fit(self, data: DataT) -> Any:
        """Fit the model on `data` (replacing any earlier fit); returns self."""
        ...

    def sample(self, n: int, rng: np.random.Generator) -> DataT:
        """n draws from the fitted model, for every chain."""
        ...

    def concat(self, parts: Sequence[DataT]) -> DataT:
        """The union of several data sets (per chain)."""
        ...

    def score(self, samples: DataT, rng: np.random.Generator) -> Mapping[str, np.ndarray]:
        """Metrics of the fitted model (and of its `samples`, M draws) against the original;
        each value has one entry per chain."""
        ...


@dataclass(frozen=True)
class ChainRecord:
    """Raw per-chain metrics of a run: each array is [generations + 1, chains]."""

    metrics: dict[str, np.ndarray]
    policy: str
    beta: float
    samples: int

    @property
    def generations(self) -> int:
        return next(iter(self.metrics.values())).shape[0] - 1

    @property
    def n_chains(self) -> int:
        return next(iter(self.metrics.values())).shape[1]


def validate_plan(generations: int, samples: int, policy: str, beta: float) -> None:
    if not isinstance(generations, int | np.integer) or generations < 0:
        raise InvalidInputError(f"generations must be a non-negative integer, got {generations!r}")
    if not isinstance(samples, int | np.integer) or samples < 1:
        raise InvalidInputError(
            f"samples per generation must be a positive integer, got {samples!r}"
        )
    if policy not in POLICIES:
        raise InvalidInputError(f"unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")
    if not 0.0 <= beta <= 1.0:
        raise InvalidInputError(
            f"beta (fraction of fresh original data) must be in [0, 1], got {beta}"
        )
    if policy != "keep-real" and beta != 0.0:
        raise InvalidInputError(
            f"beta only applies to policy 'keep-real'; got beta={beta} with {policy!r}"
        )


def fresh_count(samples: int, policy: str, beta: float) -> int:
    """How many of a generation's M samples are fresh original data under the policy."""
    return round(beta * samples) if policy == "keep-real" else 0


def run_generations(
    model: GenerativeModel[DataT],
    *,
    generations: int,
    samples: int,
    policy: str = "replace",
    beta: float = 0.0,
    random_state: int | np.random.Generator | None = 0,
    initial: DataT | None = None,
    progress: ProgressCallback | None = None,
) -> ChainRecord:
    """Run the recursion for `generations` steps after generation 0 and record every metric.

    `initial` replaces the original sample as generation 0's data (a forecast starts from the
    candidate corpus); fresh data under `keep-real` still comes from `model.sample_original`.
    """
    validate_plan(generations, samples, policy, beta)
    rng = np.random.default_rng(random_state)
    n_fresh = fresh_count(samples, policy, beta)
    data = model.sample_original(samples, rng) if initial is None else initial
    history = data
    rows: dict[str, list[np.ndarray]] = {}
    for g in range(generations + 1):
        model.fit(data)
        # The measured sample is always M model draws; under keep-real it is drawn in two parts so
        # the synthetic part of the next generation is a subset of it, with no extra sampling.
        n_synth = samples - n_fresh
        synthetic = model.sample(n_synth, rng) if n_synth else None
        rest = model.sample(n_fresh, rng) if n_fresh else None
        parts = [p for p in (synthetic, rest) if p is not None]
        measured = parts[0] if len(parts) == 1 else model.concat(parts)
        for name, value in model.score(measured, rng).items():
            rows.setdefault(name, []).append(np.asarray(value, dtype=float).reshape(model.n_chains))
        if progress is not None:
            progress(g + 1, generations + 1)
        if g == generations:
            break
        if policy == "replace":
            data = measured
        elif policy == "keep-real":
            fresh = model.sample_original(n_fresh, rng) if n_fresh else None
            if synthetic is None or fresh is None:
                chosen = synthetic if fresh is None else fresh
                assert chosen is not None  # M >= 1, so at least one part is non-empty
                data = chosen
            else:
                data = model.concat([synthetic, fresh])
        else:  # accumulate
            history = model.concat([history, measured])
            data = history
    return ChainRecord(
        metrics={k: np.stack(v) for k, v in rows.items()}, policy=policy, beta=beta, samples=samples
    )


def run_seeds(
    make_model: Callable[[], GenerativeModel[Any]],
    *,
    seeds: int,
    generations: int,
    samples: int,
    policy: str = "replace",
    beta: float = 0.0,
    random_state: int = 0,
    initial: Callable[[int], Any] | None = None,
    progress: ProgressCallback | None = None,
) -> ChainRecord:
    """Independent runs of a model that holds one chain, one per seed, stacked as chains.

    Seed s uses `SeedSequence(random_state).spawn(seeds)[s]`, so seed s of a run with more seeds is
    the same chain: adding seeds never changes the chains already computed. `initial(s)` may give
    seed s its own generation-0 data.
    """
    if seeds < 1:
        raise InvalidInputError(f"seeds must be at least 1, got {seeds}")
    validate_plan(generations, samples, policy, beta)
    children = np.random.SeedSequence(random_state).spawn(seeds)
    total = seeds * (generations + 1)
    records = []
    for s, child in enumerate(children):

        def tick(done: int, _total: int, offset: int = s * (generations + 1)) -> None:
            if progress is not None:
                progress(offset + done, total)

        records.append(
            run_generations(
                make_model(),
                generations=generations,
                samples=samples,
                policy=policy,
                beta=beta,
                random_state=np.random.default_rng(child),
                initial=None if initial is None else initial(s),
                progress=tick,
            )
        )
    metrics = {
        k: np.concatenate([r.metrics[k] for r in records], axis=1) for k in records[0].metrics
    }
    return ChainRecord(metrics=metrics, policy=policy, beta=beta, samples=samples)
