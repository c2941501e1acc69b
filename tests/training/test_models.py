"""Model fitting on rare labels: early stopping watches the loss training minimises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba.catalogue import default_catalogue
from training.models import ModelConfig, fit_action, matrix


def rare_label_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    age = rng.uniform(18, 90, n)
    children = rng.integers(0, 4, n)
    logit = -5.0 + 0.04 * (age - 50) + 0.5 * children
    label = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"age": age, "n_children": children, "label_prevoyance": label.astype(int)})


@pytest.mark.parametrize("balance", ["sqrt", "none"])
def test_re_weighted_positives_do_not_stop_training_early(balance: str) -> None:
    rng = np.random.default_rng(0)
    train, valid, test = (rare_label_frame(rng, n) for n in (40_000, 20_000, 20_000))
    action = default_catalogue()["prevoyance"]
    config = ModelConfig(balance=balance, n_estimators=300, early_stopping_rounds=30, learning_rate=0.1)
    model = fit_action(train, valid, action, ["age", "n_children"], config)
    assert model.best_iteration > 30
    # calibrated on the validation rows, whatever the weighting
    p = model.predict(matrix(test, ["age", "n_children"]))
    assert p.mean() == pytest.approx(test["label_prevoyance"].mean(), rel=0.2)
