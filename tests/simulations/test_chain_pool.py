"""A forecast's chains on several processes (simulations.chain_pool): the sequential numbers,
bit for bit, whatever the process count, and a worker killed mid-life costs no forecast.

Synthetic Gaussian vectors (fast); real worker processes (spawned, as in the service).
"""

from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pytest

from detectors.reference import ReferenceCorpus
from simulations import chain_pool
from simulations.forecast import Plan, forecast
from simulations.loop import run_seeds
from simulations.models.embedding import (
    RETRAINING_ERROR,
    EmbeddingMixtureModel,
    ProjectedReference,
    first_fit,
)
from simulations.top_up import min_top_up


@pytest.fixture(scope="module")
def reference(toy_reference: ReferenceCorpus) -> ReferenceCorpus:
    return toy_reference


@pytest.fixture(scope="module")
def candidate(toy_candidate: np.ndarray) -> np.ndarray:
    return toy_candidate


def _task(
    proj: ProjectedReference, start: np.ndarray, seed: np.random.SeedSequence, *, generations: int
) -> chain_pool.ChainTask:
    """A keep-real 25% chain of 120 samples per generation (baseline seed 3)."""
    return chain_pool.ChainTask(
        projected=proj,
        error=RETRAINING_ERROR,
        baseline_seed=3,
        generations=generations,
        samples=120,
        policy="keep-real",
        beta=0.25,
        seed=seed,
        initial=start,
    )


def test_chains_on_two_processes_equal_the_sequential_run(reference):
    """The chains run_seeds ran (one process, seeds spawned from random_state) are what
    run_chains returns with one process and with two."""
    proj = ProjectedReference.build(reference, dims=8, seed=0)
    rng = np.random.default_rng(5)
    starts = [proj.holdout[rng.choice(len(proj.holdout), 120)] for _ in range(4)]
    children = np.random.SeedSequence(3).spawn(4)
    tasks = [
        _task(proj, start, child, generations=2)
        for child, start in zip(children, starts, strict=True)
    ]
    want = run_seeds(
        lambda: EmbeddingMixtureModel(proj, baseline_seed=3, error=RETRAINING_ERROR),
        seeds=4,
        generations=2,
        samples=120,
        policy="keep-real",
        beta=0.25,
        random_state=3,
        initial=lambda s: starts[s],
    )
    calls = []
    for processes in (1, 2):
        got = chain_pool.run_chains(tasks, processes=processes, done=lambda: calls.append(1))
        for name, values in want.metrics.items():
            stacked = np.concatenate([r.record.metrics[name] for r in got], axis=1)
            np.testing.assert_array_equal(stacked, values, err_msg=f"{name}, {processes}")
    assert len(calls) == 8  # one call per finished chain


def test_forecast_and_top_up_are_the_same_on_any_number_of_processes(reference, candidate):
    plan = Plan(generations=3, samples=150, seeds=4)
    one = forecast(reference, candidate, plan, random_state=1)
    two = forecast(reference, candidate, plan, random_state=1, processes=2)
    assert one.trajectories == two.trajectories and one.human == two.human
    target = min(1.5, one.relative_final() + 0.05)  # just out of reach: the search runs
    top_one = min_top_up(reference, candidate, plan, target=target, random_state=1, base=one)
    top_two = min_top_up(reference, candidate, plan, target=target, random_state=1, processes=2)
    assert top_one.beta == top_two.beta
    assert top_one.forecast.trajectories == top_two.forecast.trajectories


def test_a_killed_worker_costs_no_forecast(reference, candidate):
    """SIGKILL the worker process between two forecasts: the next forecast runs its chains here
    and gets the same numbers; the one after gets a new worker."""
    plan = Plan(generations=2, samples=120, seeds=4)
    want = forecast(reference, candidate, plan, random_state=2, processes=2)
    worker = chain_pool._worker(0)
    pid = worker.submit(os.getpid).result()
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    again = forecast(reference, candidate, plan, random_state=2, processes=2)
    assert again.trajectories == want.trajectories
    new_pid = chain_pool._worker(0).submit(os.getpid).result()
    assert new_pid not in (pid, os.getpid())
    assert forecast(reference, candidate, plan, random_state=2, processes=2).human == want.human


def test_first_fit_is_kept_and_handed_out_as_a_copy():
    rng = np.random.default_rng(7)
    data = rng.standard_normal((200, 4)).astype(np.float32)
    a, b = first_fit(data, 3), first_fit(data, 3)
    assert a is not b and a.means_ is b.means_  # one fit, two handles
    a.random_state = 123  # what sampling does to its handle
    assert b.random_state == 0
    fresh = first_fit(data + 1, 3)
    assert not np.allclose(fresh.means_, a.means_)


def test_workers_started_ahead_are_the_ones_a_forecast_uses(reference, candidate):
    """An audit starts the workers before embedding (their imports then overlap it): the
    forecast that follows runs its chains on that same process, with the same numbers."""
    plan = Plan(generations=2, samples=120, seeds=4)
    want = forecast(reference, candidate, plan, random_state=4, processes=1)
    chain_pool.start_workers(2)
    pid = chain_pool._worker(0).submit(os.getpid).result()
    assert pid != os.getpid()
    got = forecast(reference, candidate, plan, random_state=4, processes=2)
    assert got.trajectories == want.trajectories and got.human == want.human
    assert chain_pool._worker(0).submit(os.getpid).result() == pid
    chain_pool.start_workers(1)  # one process: nothing to start
    assert chain_pool._worker(0).submit(os.getpid).result() == pid


def test_a_final_only_chain_is_the_chain_measured_at_its_end(reference):
    """`final_only` defers every measurement but the last: the final row is the full chain's,
    the earlier rows are NaN, and their samples are kept, one per generation, scoring to the
    full chain's rows."""
    proj = ProjectedReference.build(reference, dims=8, seed=0)
    start = proj.holdout[np.random.default_rng(1).choice(len(proj.holdout), 120)]
    task = _task(proj, start, np.random.SeedSequence(9), generations=3)
    full = chain_pool.run_chain(task).record.metrics
    deferred = chain_pool.run_chain(dataclasses.replace(task, final_only=True))
    assert len(deferred.pending) == 3
    model = EmbeddingMixtureModel(proj, baseline_seed=3, error=RETRAINING_ERROR)
    for name, rows in deferred.record.metrics.items():
        assert np.isnan(rows[:-1]).all()
        assert rows[-1] == full[name][-1]
        rescored = [model.score(p, np.random.default_rng(0))[name][0] for p in deferred.pending]
        np.testing.assert_array_equal(rescored, full[name][:-1, 0])


# A process that starts two forecast workers, prints their ids, then exits or waits for a signal.
OWNER = """
import os, sys, time
from simulations import chain_pool
chain_pool.start_workers(3)
pids = [chain_pool._worker(i).submit(os.getpid).result() for i in range(2)]
assert sorted(pids) == chain_pool.worker_pids()
print(" ".join(map(str, pids)), flush=True)
if sys.argv[1] == "exit":
    sys.exit(0)
time.sleep(120)
"""


def _gone_within(pids: list[int], seconds: float) -> bool:
    import time

    import psutil

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        living = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    living.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not living:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("end", ["exit", "SIGINT", "SIGTERM", "SIGKILL"])
def test_workers_end_with_the_process_that_started_them(end):
    """However their parent ends (normal exit, Ctrl-C, SIGTERM, SIGKILL), the workers end too:
    none is left running with parent PID 1."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, end], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 2 and owner.pid not in pids
        if end != "exit":
            owner.send_signal(getattr(signal, end))
        owner.wait(timeout=60)
        assert _gone_within(pids, 10), f"workers left after {end}"
    finally:
        owner.kill()


def test_stop_workers_ends_them_and_the_next_forecast_starts_new_ones(reference, candidate):
    plan = Plan(generations=2, samples=120, seeds=4)
    want = forecast(reference, candidate, plan, random_state=3, processes=2)
    before = chain_pool.worker_pids()
    assert before
    chain_pool.stop_workers()
    assert chain_pool.worker_pids() == []
    assert _gone_within(before, 10)
    again = forecast(reference, candidate, plan, random_state=3, processes=2)
    assert again.trajectories == want.trajectories
    assert set(chain_pool.worker_pids()).isdisjoint(before)
