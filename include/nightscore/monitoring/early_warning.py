"""The evening's early warning: tonight's features and scores against the model's own
training nights, right after scoring, before anyone uses the scores.

Why not Evidently's verdict per column: one night (about 900 flights) against a 5,000-row
sample spread over the 120-day training window "drifts" on 70-80 % of the features every
ordinary night, because the window holds many kinds of night and one night is only one
kind. What matters is whether tonight is unlike *any night* the model learned from, on
the features the model leans on. So, per feature:

- **the night's average** is compared with the averages of the training window's nights
  (control limits: their mean and standard deviation, and their range); `z` is how many
  of those standard deviations tonight is away, `beyond` says it is outside anything the
  window saw;
- each feature counts by its **importance to the model**: its share of the mean
  |TreeSHAP contribution| on the reference sample (what it moves the score by, on the
  average flight);
- the **score** is watched the same way (tonight's mean risk against the nightly means),
  and so is the ranking the scores can be expected to give: the **expected ROC AUC**, the
  AUC the night would have if its scores were right (each flight disrupted with its own
  probability). A night whose flights all look alike to the model cannot be ranked well,
  whatever the features did.

The profile (`build_profile`, JSON-ready) is made at training from the training frame and
stored with the model version; `Night` accumulates tonight's rows in chunks (memory is per
chunk and a few arrays per feature, so 10M rows cost what 1M do) and `assess` applies the
rule (`WarningRule`, from the alert rules file). Evidently's default tests run beside it on
the same chunks (`drift_fast`), for the record and the morning's comparison, not for the
verdict. pandas and scipy are imported when used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nightscore.features import CATEGORICAL, FEATURES
from nightscore.monitoring.drift_methods import SCORE
from nightscore.monitoring.rules import WarningRule

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.monitoring.drift_methods import DriftResult

PROFILE_FORMAT = 1
# Constant within a night by construction (the batch has one month, one weekday): every
# night is "beyond" a window of other weekdays and months. Not watched.
CALENDAR = ("month", "day_of_week", "days_to_holiday")
WATCHED = tuple(f for f in FEATURES if f not in CATEGORICAL and f not in CALENDAR)
# The score's histogram for the expected AUC: ties within a bin count half, an error of
# at most one bin's share of pairs (1/4096 of the scale).
SCORE_BINS = 4096
# Rows of tonight kept (uniformly, whatever the night's size) for Evidently's human report.
SAMPLE_ROWS = 5000
# A night's average of a feature no night of the window varied on (plane_known is 1 on
# nearly every flight) would give z = inf for any change: a floor on the spread, as a
# share of the feature's own scale (the reference's standard deviation).
MIN_SPREAD = 0.05


# A night turned out bad when its mean risk missed the observed rate by more than this.
CALIBRATION_MISS = 0.10


def bad_night(
    roc_auc: float | None, mean_score: float, observed_rate: float, auc_floor: float
) -> str | None:
    """Why a scored night turned out bad, or None for an ordinary one: its ROC AUC below
    the gate's floor (`Settings.gate_floor_roc_auc`), or its mean risk more than
    CALIBRATION_MISS off the observed disruption rate. A night with one class only has no
    AUC; it is judged by its calibration alone."""
    reasons = []
    if roc_auc is not None and math.isfinite(roc_auc) and roc_auc < auc_floor:
        reasons.append(f"ROC AUC {roc_auc:.3f} below {auc_floor:g}")
    if abs(mean_score - observed_rate) > CALIBRATION_MISS:
        reasons.append(
            f"mean risk {mean_score:.3f} vs observed rate {observed_rate:.3f} "
            f"(more than {CALIBRATION_MISS:g} apart)"
        )
    return "; ".join(reasons) or None


def expected_auc(histogram_p: np.ndarray, histogram_q: np.ndarray) -> float:
    """The ROC AUC expected if each flight were disrupted with its score's probability:
    per score bin, the sum of the scores (`p`, expected positives) and of 1 - score (`q`,
    expected negatives). Pairs in the same bin count half."""
    positives, negatives = float(histogram_p.sum()), float(histogram_q.sum())
    if positives <= 0 or negatives <= 0:
        return float("nan")
    below = np.cumsum(histogram_q) - histogram_q  # negatives in lower bins
    pairs = histogram_p * (below + histogram_q / 2)
    return float(pairs.sum() / (positives * negatives))


def score_histogram(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`expected_auc`'s inputs for a set of scores."""
    s = np.clip(np.asarray(scores, dtype="float64"), 0, 1)
    s = s[np.isfinite(s)]
    bins = np.minimum((s * SCORE_BINS).astype("int64"), SCORE_BINS - 1)
    p = np.bincount(bins, weights=s, minlength=SCORE_BINS)
    q = np.bincount(bins, weights=1 - s, minlength=SCORE_BINS)
    return p, q


# --- the profile, made at training ----------------------------------------------------


def build_profile(
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    importance: dict[str, float],
    *,
    score: str = SCORE,
) -> dict[str, Any]:
    """What the evening check needs of the training window, as JSON-ready data.

    `frame` is the training frame (train and validation days) with `service_date` and the
    model's `score` on every flight; `reference` the reference sample with its score (for
    Evidently's tests, `drift_fast.reference_stats`); `importance` the mean |contribution|
    per feature. Per watched feature and for the score: the nightly averages' mean,
    standard deviation, minimum and maximum over the window's nights.
    """
    from nightscore.monitoring.drift_fast import reference_stats

    if frame.empty:
        raise ValueError("the training frame is empty: no nights to profile")
    watched = [f for f in WATCHED if f in frame]
    by_night = frame.groupby("service_date", sort=True)
    means = by_night[[*watched, score]].mean()
    total = sum(max(float(importance.get(f, 0.0)), 0.0) for f in FEATURES) or 1.0
    columns = {}
    for name in [*watched, score]:
        nightly = means[name].dropna().to_numpy(dtype="float64")
        scale = (
            float(np.nanstd(reference[name].to_numpy(dtype="float64")))
            if name in reference
            else 0.0
        )
        columns[name] = {
            "importance": max(float(importance.get(name, 0.0)), 0.0) / total
            if name != score
            else None,
            "nights": int(nightly.size),
            "mean": float(nightly.mean()) if nightly.size else None,
            "sd": float(nightly.std(ddof=1)) if nightly.size > 1 else None,
            "low": float(nightly.min()) if nightly.size else None,
            "high": float(nightly.max()) if nightly.size else None,
            "scale": scale,
        }
    aucs = []
    for _, night in by_night:
        aucs.append(expected_auc(*score_histogram(night[score].to_numpy())))
    aucs_array = np.asarray([a for a in aucs if math.isfinite(a)])
    return {
        "format": PROFILE_FORMAT,
        "nights": int(means.shape[0]),
        "first_night": str(means.index.min()),
        "last_night": str(means.index.max()),
        "columns": columns,
        "expected_auc": {
            "mean": float(aucs_array.mean()) if aucs_array.size else None,
            "low": float(aucs_array.min()) if aucs_array.size else None,
        },
        "reference_stats": reference_stats(reference, [f for f in FEATURES if f in reference]),
    }


# --- tonight, accumulated in chunks -------------------------------------------------------


class Night:
    """Tonight's rows, chunk by chunk: sums and counts per watched feature, the score's
    histogram, and a uniform sample of SAMPLE_ROWS rows (for Evidently's human report)."""

    def __init__(self, profile: dict[str, Any], *, score: str = SCORE, seed: int = 13):
        self.columns = [c for c in profile["columns"] if c != score]
        self.score = score
        self.sums = dict.fromkeys(self.columns, 0.0)
        self.counts = dict.fromkeys(self.columns, 0)
        self.score_sum = 0.0
        self.rows = 0
        self.p = np.zeros(SCORE_BINS)
        self.q = np.zeros(SCORE_BINS)
        self._rng = np.random.default_rng(seed)
        self._sample: pd.DataFrame | None = None
        self._keys: np.ndarray | None = None

    def add(self, chunk: pd.DataFrame) -> None:
        for name in self.columns:
            if name in chunk:
                values = chunk[name].to_numpy(dtype="float64", na_value=np.nan)
                finite = values[np.isfinite(values)]
                self.sums[name] += float(finite.sum())
                self.counts[name] += int(finite.size)
        scores = chunk[self.score].to_numpy(dtype="float64")
        self.score_sum += float(np.nansum(scores))
        p, q = score_histogram(scores)
        self.p += p
        self.q += q
        self.rows += len(chunk)
        self._keep_sample(chunk)

    def _keep_sample(self, chunk: pd.DataFrame) -> None:
        """A uniform sample over all chunks: each row gets a random key, the smallest
        SAMPLE_ROWS keys are kept (a bottom-k sketch). Only the kept rows are copied:
        appending each whole 100,000-row chunk to the sample before choosing cost 6-8
        times as much (0.3-0.6 s of a 1M-row night, against 0.04-0.09 s)."""
        import pandas as pd

        keys = self._rng.random(len(chunk))
        held = 0 if self._keys is None else len(self._keys)
        if self._keys is not None:
            keys = np.concatenate([self._keys, keys])
        if len(keys) > SAMPLE_ROWS:
            keep = np.argpartition(keys, SAMPLE_ROWS - 1)[:SAMPLE_ROWS]
        else:
            keep = np.arange(len(keys))
        if self._sample is None:
            frame = chunk.take(keep)
        elif not self._sample.dtypes.equals(chunk.dtypes):
            # Columns or types differ: the concatenation decides them, as it always did.
            whole = pd.concat([self._sample, chunk.reset_index(drop=True)], ignore_index=True)
            frame = whole.take(keep)
        else:
            held_rows = keep < held
            frame = pd.concat(
                [self._sample.take(keep[held_rows]), chunk.take(keep[~held_rows] - held)],
                ignore_index=True,
            )
            # Back in `keep`'s order: the rows the whole concatenation would have given.
            order = np.empty(len(keep), dtype="int64")
            kept_before = int(held_rows.sum())
            order[held_rows] = np.arange(kept_before)
            order[~held_rows] = kept_before + np.arange(len(keep) - kept_before)
            frame = frame.take(order)
        self._sample, self._keys = frame.reset_index(drop=True), keys[keep]

    @property
    def sample(self) -> pd.DataFrame:
        import pandas as pd

        return self._sample if self._sample is not None else pd.DataFrame()

    def mean(self, name: str) -> float | None:
        if name == self.score:
            return self.score_sum / self.rows if self.rows else None
        return self.sums[name] / self.counts[name] if self.counts.get(name) else None

    def feed(self, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Pass the chunks on (to `drift_fast.fast_drift`), adding each one here first."""
        for chunk in chunks:
            self.add(chunk)
            yield chunk
            # Before the next one is read: held here, two chunks were in memory at once
            # (+34 MB at 100,000 real rows).
            del chunk


# --- the verdict --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureCheck:
    column: str
    tonight: float | None  # the night's average (None: no value tonight)
    mean: float | None  # the training nights' averages: mean, sd, range
    sd: float | None
    low: float | None
    high: float | None
    z: float | None  # (tonight - mean) / sd
    importance: float  # share of the model's mean |contribution|
    beyond: bool  # outside [low, high]
    excess: float  # importance x max(0, |z| - limit_sd)
    # Evidently's default test on the same rows (drift_fast), for the record.
    evidently_method: str | None = None
    evidently_statistic: float | None = None
    evidently_drifted: bool | None = None


@dataclass(frozen=True)
class Assessment:
    rows: int
    features: tuple[FeatureCheck, ...]
    score_mean: float | None
    score_z: float | None
    expected_auc: float | None
    importance_excess: float
    warned: bool
    reasons: tuple[str, ...]  # which conditions fired, in words
    evidently_share: float | None = None  # Evidently's share of drifted watched features
    training_nights: int = 0
    sample: Any = field(default=None, repr=False, compare=False)
    # Evidently's default tests on every column and the score (drift_fast), not only the
    # watched features above: what the morning and the benchmark compare with Evidently.
    evidently: DriftResult | None = field(default=None, repr=False, compare=False)

    @property
    def moved(self) -> list[FeatureCheck]:
        """The features that moved past their limits, the most consequential first."""
        return sorted((f for f in self.features if f.excess > 0), key=lambda f: -f.excess)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("sample")
        out.pop("evidently")
        return out


def _z(value: float | None, stats: dict[str, Any]) -> float | None:
    if value is None or stats.get("mean") is None:
        return None
    spread = max(stats.get("sd") or 0.0, MIN_SPREAD * (stats.get("scale") or 0.0), 1e-9)
    return (value - stats["mean"]) / spread


def assess(
    profile: dict[str, Any],
    night: Night,
    rule: WarningRule,
    evidently: DriftResult | None = None,
) -> Assessment:
    """Tonight (`night`, every chunk added) against the profile, by `rule`."""
    checks = []
    for name in night.columns:
        stats = profile["columns"][name]
        tonight = night.mean(name)
        z = _z(tonight, stats)
        importance = float(stats.get("importance") or 0.0)
        beyond = (
            tonight is not None
            and stats.get("low") is not None
            and not (stats["low"] <= tonight <= stats["high"])
        )
        excess = importance * max(0.0, abs(z) - rule.limit_sd) if z is not None else 0.0
        found = None
        if evidently is not None:
            try:
                found = evidently.column(name)
            except KeyError:
                found = None
        checks.append(
            FeatureCheck(
                column=name,
                tonight=tonight,
                mean=stats.get("mean"),
                sd=stats.get("sd"),
                low=stats.get("low"),
                high=stats.get("high"),
                z=z,
                importance=importance,
                beyond=bool(beyond),
                excess=excess,
                evidently_method=found.method if found else None,
                evidently_statistic=found.statistic if found else None,
                evidently_drifted=found.drifted if found else None,
            )
        )
    score_mean = night.mean(night.score)
    score_z = _z(score_mean, profile["columns"][night.score])
    raw_auc = expected_auc(night.p, night.q)
    auc = raw_auc if math.isfinite(raw_auc) else None
    excess = sum(c.excess for c in checks)
    reasons = []
    if rule.importance_excess_above is not None and excess > rule.importance_excess_above:
        reasons.append("features the model leans on are far outside its training nights")
    if (
        rule.score_sd_above is not None
        and score_z is not None
        and abs(score_z) > rule.score_sd_above
    ):
        reasons.append("tonight's mean risk is far outside its training nights'")
    if rule.expected_auc_below is not None and auc is not None and auc < rule.expected_auc_below:
        reasons.append("tonight's flights look too alike to the model to be ranked well")
    watched = [c for c in checks if c.evidently_drifted is not None]
    return Assessment(
        rows=night.rows,
        features=tuple(checks),
        score_mean=score_mean,
        score_z=score_z,
        expected_auc=auc,
        importance_excess=excess,
        warned=bool(reasons),
        reasons=tuple(reasons),
        evidently_share=(
            sum(bool(c.evidently_drifted) for c in watched) / len(watched) if watched else None
        ),
        training_nights=int(profile.get("nights", 0)),
        sample=night.sample,
        evidently=evidently,
    )


def check_night(
    profile: dict[str, Any],
    chunks: pd.DataFrame | Iterable[pd.DataFrame],
    rule: WarningRule,
    *,
    evidently_tests: bool = True,
    columns: Sequence[str] | None = None,
) -> Assessment:
    """Tonight's rows (a frame, or chunks read once) against the profile: the whole
    evening check, without IO. With `evidently_tests`, Evidently's default tests run on
    the same pass (`drift_fast.fast_drift` from the profile's reference statistics)."""
    import pandas as pd

    from nightscore.monitoring.drift_fast import fast_drift

    if isinstance(chunks, pd.DataFrame):
        chunks = [chunks]
    night = Night(profile)
    evidently = None
    if evidently_tests:
        stats = profile["reference_stats"]
        names = columns or [c for c in FEATURES if c in stats["columns"]]
        evidently = fast_drift(stats, night.feed(chunks), columns=names)
    else:
        for chunk in chunks:
            night.add(chunk)
    if night.rows == 0:
        raise ValueError("no rows tonight: nothing to check")
    return assess(profile, night, rule, evidently)
