"""nightscore.treeshap gives XGBoost's own exact TreeSHAP values, on every kind of split
the champion has: numeric, categorical (partition splits), missing values, a feature met
twice on one path, and only the trees the score uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost

from nightscore import treeshap


def _data(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 6)), columns=[f"x{i}" for i in range(6)])
    frame.loc[rng.random(rows) < 0.15, "x2"] = np.nan  # missing: the default branch
    frame["carrier"] = pd.Categorical(rng.integers(0, 16, rows))
    frame["dest"] = pd.Categorical(rng.integers(0, 90, rows))
    return frame


def _label(frame: pd.DataFrame, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = (
        frame["x0"]
        + frame["x1"] * frame["x3"]
        + np.where(frame["x2"].isna(), 1.0, frame["x2"].fillna(0))
        + (frame["carrier"].cat.codes % 4) * 0.6
        - (frame["dest"].cat.codes % 7 == 2) * 1.2
    )
    return (signal + rng.normal(size=len(frame)) > 0.7).astype(int).to_numpy()


def _fit(frame: pd.DataFrame, depth: int, trees: int) -> xgboost.Booster:
    model = xgboost.XGBClassifier(
        n_estimators=trees,
        max_depth=depth,
        learning_rate=0.3,
        tree_method="hist",
        enable_categorical=True,
        max_cat_to_onehot=1,
        min_child_weight=5,
        n_jobs=1,
        random_state=0,
    )
    model.fit(frame, _label(frame))
    return model.get_booster()


def _matrix(frame: pd.DataFrame) -> np.ndarray:
    columns = [
        frame[c].cat.codes.to_numpy("float64") if frame[c].dtype == "category" else frame[c]
        for c in frame.columns
    ]
    return np.column_stack(columns).astype("float64")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _data(4000)


@pytest.mark.parametrize(("depth", "trees", "used"), [(3, 20, 20), (6, 40, 25)])
def test_equals_xgboosts_pred_contribs_on_every_row(frame, depth, trees, used) -> None:
    booster = _fit(frame, depth, trees)
    rows = _data(1500, seed=11)  # unseen rows, with codes the trees never split on too
    rows.loc[rows.index[:5], "carrier"] = np.nan
    tables = treeshap.compile_booster(booster, (0, used), rows.shape[1])
    assert tables is not None
    ours = treeshap.contributions(tables, _matrix(rows))

    matrix = xgboost.DMatrix(rows, enable_categorical=True)
    theirs = booster.predict(matrix, pred_contribs=True, iteration_range=(0, used))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5)
    # and they add up to the margin of the trees the score uses, not of all of them
    margin = booster.predict(matrix, output_margin=True, iteration_range=(0, used))
    np.testing.assert_allclose(ours.sum(axis=1), margin, rtol=0, atol=2e-5)
    if used < trees:
        every_tree = booster.predict(matrix, output_margin=True)
        assert np.abs(ours.sum(axis=1) - every_tree).max() > 1e-3


def test_the_model_has_the_split_kinds_this_test_means_to_cover(frame) -> None:
    """A control: the fitted trees split on categories, send missing values both ways and
    meet a feature twice on one path, so the equality above covers those cases."""
    trees = _fit(frame, 6, 40).trees_to_dataframe()
    splits = trees[trees["Feature"] != "Leaf"]
    assert splits["Category"].notna().any()
    missing_to = splits[splits["Feature"] == "x2"].apply(
        lambda split: "yes" if split["Missing"] == split["Yes"] else "no", axis=1
    )
    assert set(missing_to) == {"yes", "no"}
    parent = {}
    for split in splits.itertuples():
        parent[split.Yes] = parent[split.No] = split.ID
    feature = dict(zip(trees["ID"], trees["Feature"], strict=True))
    repeated = 0
    for leaf in trees[trees["Feature"] == "Leaf"]["ID"]:
        path, node = [], leaf
        while node in parent:
            node = parent[node]
            path.append(feature[node])
        repeated += len(path) > len(set(path))
    assert repeated > 0


def test_a_model_over_the_table_budget_is_left_to_xgboost(frame) -> None:
    booster = _fit(frame, 6, 10)
    assert treeshap.compile_booster(booster, (0, 0), 8, budget=100) is None
    assert treeshap.compile_booster(booster, (0, 0), 8) is not None


def test_no_rows_give_no_rows_and_a_wrong_width_is_refused(frame) -> None:
    tables = treeshap.compile_booster(_fit(frame, 3, 5), (0, 0), 8)
    assert tables is not None
    assert treeshap.contributions(tables, np.zeros((0, 8))).shape == (0, 9)
    with pytest.raises(ValueError, match="8 features"):
        treeshap.contributions(tables, np.zeros((3, 7)))


def test_a_wrong_table_is_caught_by_the_comparison(frame) -> None:
    """A control for the equality test: one leaf's table off by a little is seen."""
    booster = _fit(frame, 3, 20)
    tables = treeshap.compile_booster(booster, (0, 0), 8)
    assert tables is not None
    rows = _matrix(frame.iloc[:500])
    tables.table[:5] += 0.01
    theirs = booster.predict(
        xgboost.DMatrix(frame.iloc[:500], enable_categorical=True), pred_contribs=True
    )
    assert np.abs(treeshap.contributions(tables, rows) - theirs).max() > 1e-3
