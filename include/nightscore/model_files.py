"""A registered model's files, read as data: the XGBoost trees and the MLmodel file.

`mlflow.xgboost.load_model` (and any pyfunc loader) imports the code a model names:
whoever can register a model version could run code inside scoring and the gate. So
nightscore never asks MLflow to load a model. It downloads the version's files, reads the
MLmodel file with `yaml.safe_load`, refuses a version that carries code, and loads the
trees with `xgboost.Booster.load_model`, which parses a UBJSON/JSON document and runs
nothing.

Refused (`UnsafeModelError`, a data error: the version stays refused however often it is
retried): a flavor other than `xgboost` and its `python_function` entry, a loader module
other than `mlflow.xgboost`, `code` (what `code_paths` writes) or a `python_model`, a
`code/` folder, and any pickle, joblib or cloudpickle file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nightscore.errors import DataError

SAFE_LOADER = "mlflow.xgboost"
SAFE_FLAVORS = {"python_function", "xgboost"}
# Tree formats XGBoost parses as documents; the legacy binary format is not accepted.
SAFE_FORMATS = {"ubj", "json"}
# Keys of a flavor that name code or a serialised Python object to import on load.
CODE_KEYS = ("code", "python_model", "cloudpickle_version", "artifacts")
# Files that deserialise Python objects (and so can run code) when loaded.
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".cloudpickle", ".dill"}


class UnsafeModelError(DataError):
    """A model version carries code, or is not plain XGBoost trees: it is not loaded."""


@dataclass(frozen=True)
class ModelFiles:
    """What a model version's folder holds, checked: the trees' file and plain metadata."""

    trees: Path
    metadata: dict[str, Any]
    signature_inputs: list[str]


def inspect(folder: Path, label: str) -> ModelFiles:
    """Check a downloaded model folder (`label` names the version in messages); raise
    UnsafeModelError listing every reason it is refused."""
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise UnsafeModelError(f"{label} has no MLmodel file: not an MLflow model")
    import yaml

    document = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        raise UnsafeModelError(f"{label}: its MLmodel file is not a mapping")
    flavors = document.get("flavors") or {}
    problems = _flavor_problems(flavors) + _file_problems(folder)
    trees = _trees(folder, flavors.get("xgboost") or {}, problems)
    if problems:
        raise UnsafeModelError(
            f"{label} is refused: it is not plain XGBoost trees ({'; '.join(problems)}). "
            "nightscore loads only models logged by its training (mlflow.xgboost, UBJ, "
            "no code_paths); register one through the retrain DAG."
        )
    assert trees is not None  # no problems: the trees' file was found
    return ModelFiles(
        trees=trees,
        metadata=dict(document.get("metadata") or {}),
        signature_inputs=_signature_inputs(document.get("signature")),
    )


def load_booster(files: ModelFiles) -> Any:
    """The trees, parsed by XGBoost from their UBJSON/JSON document."""
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(files.trees))
    return booster


def iteration_range(booster: Any) -> tuple[int, int]:
    """The trees to use, as the scikit-learn wrapper does: up to the best iteration when
    training stopped early, else all of them."""
    best = booster.attr("best_iteration")
    return (0, int(best) + 1) if best is not None else (0, 0)


def _flavor_problems(flavors: Any) -> list[str]:
    if not isinstance(flavors, dict):
        return ["its flavors are not a mapping"]
    problems = []
    unknown = sorted(set(flavors) - SAFE_FLAVORS)
    if unknown:
        problems.append(f"flavor(s) {', '.join(unknown)}")
    if "xgboost" not in flavors:
        problems.append("no xgboost flavor")
    for name, conf in flavors.items():
        if not isinstance(conf, dict):
            problems.append(f"flavor {name} is not a mapping")
            continue
        keys = [key for key in CODE_KEYS if conf.get(key)]
        if keys:
            problems.append(f"flavor {name} names code ({', '.join(keys)})")
    loader = (flavors.get("python_function") or {}).get("loader_module")
    if loader not in (None, SAFE_LOADER):
        problems.append(f"loader module {loader!r}, not {SAFE_LOADER}")
    return problems


def _file_problems(folder: Path) -> list[str]:
    problems = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_dir() and path.name == "code":
            problems.append(f"a code folder ({relative}/)")
        elif path.suffix.lower() in PICKLE_SUFFIXES:
            problems.append(f"a pickled object ({relative})")
    return problems


def _trees(folder: Path, xgb: dict[str, Any], problems: list[str]) -> Path | None:
    model_format = xgb.get("model_format")
    if model_format not in SAFE_FORMATS:
        problems.append(f"tree format {model_format!r}, not one of {sorted(SAFE_FORMATS)}")
        return None
    data = str(xgb.get("data") or "")
    name = PurePosixPath(data)
    if not data or name.is_absolute() or ".." in name.parts:
        problems.append(f"trees' file {data!r} is not a file of the model")
        return None
    trees = folder / name
    if not trees.is_file():
        problems.append(f"no trees' file {data}")
        return None
    return trees


def _signature_inputs(signature: Any) -> list[str]:
    """The input columns' names from the MLmodel signature (a JSON string, parsed as data)."""
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return []
    inputs = json.loads(signature["inputs"])
    return [str(column["name"]) for column in inputs if isinstance(column, dict)]
