"""The model folder check, on folders written here: plain XGBoost trees pass; code, a
pickle, another flavor or loader, or a legacy tree format are refused with every reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from nightscore.errors import DataError
from nightscore.model_files import UnsafeModelError, inspect, iteration_range, load_booster


def model_folder(tmp_path: Path, **changes) -> Path:
    """A folder as `mlflow.xgboost.log_model(..., model_format="ubj")` writes it, with real
    trees, changed by `changes` (flavor entries, by flavor)."""
    import xgboost

    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(200, 3)), rng.integers(0, 2, size=200)
    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(x, y), 5)
    booster.save_model(str(tmp_path / "model.ubj"))
    document = {
        "flavors": {
            "python_function": {"loader_module": "mlflow.xgboost", "data": "model.ubj"},
            "xgboost": {"data": "model.ubj", "model_format": "ubj", "xgb_version": "3.2.0"},
        },
        "metadata": {"threshold": 0.3, "features": ["a", "b", "c"], "encoding": {}},
        "signature": {"inputs": json.dumps([{"name": n, "type": "double"} for n in "abc"])},
    }
    for flavor, entries in changes.items():
        document["flavors"].setdefault(flavor, {}).update(entries)
    (tmp_path / "MLmodel").write_text(yaml.safe_dump(document))
    return tmp_path


def test_plain_trees_pass_and_load(tmp_path):
    files = inspect(model_folder(tmp_path), "m v1")
    assert files.signature_inputs == ["a", "b", "c"]
    assert files.metadata["threshold"] == 0.3
    booster = load_booster(files)
    assert booster.num_boosted_rounds() == 5 and iteration_range(booster) == (0, 0)


@pytest.mark.parametrize(
    ("changes", "files", "reason"),
    [
        ({"python_function": {"code": "code"}}, {}, "flavor python_function names code (code)"),
        ({}, {"code/evil.py": "import os"}, "a code folder (code/)"),
        ({}, {"extra/model.pkl": ""}, "a pickled object (extra/model.pkl)"),
        ({}, {"model.joblib": ""}, "a pickled object (model.joblib)"),
        ({"python_function": {"loader_module": "evil"}}, {}, "loader module 'evil'"),
        ({"python_function": {"python_model": "python_model.pkl"}}, {}, "python_model"),
        ({"sklearn": {"pickled_model": "m.pkl"}}, {}, "flavor(s) sklearn"),
        ({"xgboost": {"model_format": "xgb"}}, {}, "tree format 'xgb'"),
        ({"xgboost": {"data": "../../etc/passwd"}}, {}, "is not a file of the model"),
    ],
)
def test_a_folder_that_carries_code_is_refused(tmp_path, changes, files, reason):
    folder = model_folder(tmp_path, **changes)
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    with pytest.raises(UnsafeModelError) as refused:
        inspect(folder, "m v2")
    assert isinstance(refused.value, DataError)
    assert str(refused.value).startswith("m v2 is refused") and reason in str(refused.value)


def test_a_folder_without_mlmodel_is_refused(tmp_path):
    with pytest.raises(UnsafeModelError, match="no MLmodel file"):
        inspect(tmp_path, "m v3")
