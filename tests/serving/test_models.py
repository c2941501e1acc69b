"""The single-row scoring path gives exactly what LightGBM's own predict gives."""

from __future__ import annotations

import gc

import lightgbm as lgb
import numpy as np
import pytest

from serving.models import SingleRow


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2_000, 6))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take the trees' default branch
    y = (x[:, 0] + 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(size=2_000) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 1}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=60)


def test_single_rows_match_booster_predict(booster: lgb.Booster) -> None:
    rows = np.random.default_rng(4).normal(size=(200, 6))
    rows[::7, 2] = np.nan
    raw = SingleRow(booster, SingleRow.RAW_SCORE, 40, 6)
    contrib = SingleRow(booster, SingleRow.CONTRIB, 40, 6)
    expected_raw = booster.predict(rows, num_iteration=40, raw_score=True)
    expected_contrib = booster.predict(rows, num_iteration=40, pred_contrib=True)
    got_raw = np.array([raw(np.ascontiguousarray(r))[0] for r in rows])
    got_contrib = np.vstack([contrib(np.ascontiguousarray(r)) for r in rows])
    assert np.array_equal(got_raw, expected_raw)
    assert np.array_equal(got_contrib, expected_contrib)
    # only 40 of the 60 trees: the full model scores differently
    assert not np.array_equal(got_raw, booster.predict(rows, raw_score=True))


def test_a_row_of_the_wrong_shape_is_refused(booster: lgb.Booster) -> None:
    raw = SingleRow(booster, SingleRow.RAW_SCORE, 60, 6)
    with pytest.raises(ValueError, match="contiguous float64 row of 6 values"):
        raw(np.zeros(5))
    with pytest.raises(ValueError, match="float64"):
        raw(np.zeros(6, dtype=np.float32))


def test_the_setup_outlives_the_caller_s_booster_reference() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 3))
    params = {"objective": "binary", "verbose": -1, "num_threads": 1}
    model = lgb.train(params, lgb.Dataset(x, (x[:, 0] > 0).astype(int)), num_boost_round=5)
    row = np.ascontiguousarray(x[0])
    expected = model.predict(x[:1], raw_score=True)[0]
    raw = SingleRow(model, SingleRow.RAW_SCORE, 5, 3)
    del model
    gc.collect()
    assert raw(row)[0] == expected
