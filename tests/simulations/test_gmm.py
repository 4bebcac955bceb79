"""The paper's GMM experiment: the fit degrades under `replace`, far less under `accumulate`."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import t as student_t

from simulations.loop import run_seeds
from simulations.models.gmm import MixtureModel


def test_fit_to_the_original_degrades_under_replace_and_holds_under_accumulate():
    common: dict[str, Any] = {"seeds": 8, "generations": 30, "samples": 1000, "random_state": 0}
    rep = run_seeds(MixtureModel, **common).metrics["heldout_loglik"]
    acc = run_seeds(MixtureModel, policy="accumulate", **common).metrics["heldout_loglik"]
    drop_rep = rep[0] - rep[-1]  # per seed: how much held-out log-likelihood was lost
    drop_acc = acc[0] - acc[-1]
    q = student_t.ppf(0.995, df=len(drop_rep) - 1)  # one-sided, 8 seeds
    assert drop_rep.mean() > q * drop_rep.std(ddof=1) / np.sqrt(len(drop_rep))  # it degrades
    diff = drop_rep - drop_acc  # paired: same seeds, same generation-0 data
    assert diff.mean() > q * diff.std(ddof=1) / np.sqrt(len(diff))
