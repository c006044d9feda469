"""Replay 2013 night by night: does a drift warning rule fire before the nights whose
scores turned out bad, and stay quiet on the ordinary ones?

A night S is *bad* when, for the model that scored it, the ROC AUC of its scores against
the night's outcomes (`disrupted`, on every flight with a label) is below the gate's floor
(`Settings.gate_floor_roc_auc`, 0.65), or its mean risk is more than 0.10 away from the
observed disruption rate (`early_warning.bad_night`, as the morning monitoring judges
it); otherwise it is *ordinary*. The goal, per
rule: at least half the bad nights warned, at most one false alarm in 20 ordinary nights.

Four stages. The first three (the warehouse with all of 2013, its features, a champion
per `--retrain-days` nights with its scores) are built once and cached in `--cache`
(default `.cache/bench-alerts/`, git-ignored); `alerts_cache.py` says how, and what each
cached file holds. The fourth evaluates the rules, night by night: each night scored by
its period's champion, each rule's verdict made from what is known that evening (the
night's features and scores, never its outcomes), then set against the outcomes.

What is fitted on what: a champion on its own training window, which ends two days
before the first night it scores; a rule's state (`AlertRule.fit`) on that champion's
cache only (its training frame and scores, reference sample, importance), so on nothing
after its cut-off. The thresholds come from the alert rules file: nothing is tuned on
the nights being evaluated.

Per rule it prints nights, bad nights, warned bad, missed bad, false alarms, ordinary
nights, the share of bad nights warned, the false-alarm rate and whether the goal is met;
per night it writes a CSV (`--nights-csv`, default `<cache>/nights.csv`): date, model,
flights, labelled flights, ROC AUC, mean risk, observed rate, bad and why, each rule's
verdict. Run with `make bench-alerts` (`ARGS="--trials 5 --retrain-days 28"`). The last
line is JSON for the production rule; the line before it has every rule's figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from alerts_cache import ModelCache, Reign, bench_settings, features, models, warehouse
from harness import say

DEFAULT_WAREHOUSE_URL = "postgresql://nightscore_etl@127.0.0.1:5432/nightscore_bench_alerts"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "bench-alerts"
# The goal per rule: at least half the bad nights warned, at most 1 false alarm in 20.
GOAL_WARNED_SHARE = 0.5
GOAL_FALSE_ALARM_RATE = 1 / 20


# --- pure: bad nights and the table -----------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """How a rule's warnings line up with the bad nights."""

    nights: int
    bad_nights: int
    warned_bad: int
    false_alarms: int

    @property
    def missed_bad(self) -> int:
        return self.bad_nights - self.warned_bad

    @property
    def ordinary_nights(self) -> int:
        return self.nights - self.bad_nights

    @property
    def warned_share(self) -> float | None:
        return self.warned_bad / self.bad_nights if self.bad_nights else None

    @property
    def false_alarm_rate(self) -> float | None:
        return self.false_alarms / self.ordinary_nights if self.ordinary_nights else None

    @property
    def goal_met(self) -> bool:
        """Half the bad nights warned, at most one false alarm in 20 ordinary nights
        (with no bad night, or no ordinary one, that half of the goal cannot be met)."""
        share, rate = self.warned_share, self.false_alarm_rate
        return (
            share is not None
            and share >= GOAL_WARNED_SHARE
            and rate is not None
            and rate <= GOAL_FALSE_ALARM_RATE
        )

    def figures(self) -> dict[str, Any]:
        """The five counts of the last line."""
        return {
            "nights": self.nights,
            "bad_nights": self.bad_nights,
            "warned_bad": self.warned_bad,
            "false_alarms": self.false_alarms,
            "ordinary_nights": self.ordinary_nights,
        }


def tally(bad: Sequence[bool], warned: Sequence[bool]) -> Tally:
    """Count a rule's verdicts against the nights' outcomes, night by night."""
    if len(bad) != len(warned):
        raise ValueError(f"{len(bad)} nights judged but {len(warned)} verdicts")
    return Tally(
        nights=len(bad),
        bad_nights=sum(bool(b) for b in bad),
        warned_bad=sum(bool(b) and bool(w) for b, w in zip(bad, warned, strict=True)),
        false_alarms=sum(not b and bool(w) for b, w in zip(bad, warned, strict=True)),
    )


# --- rules (stage 4) --------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRule:
    """A warning rule: `fit` makes its state from one model's cache (never from the
    nights it judges); `fires` judges one night from what is known that evening: the
    night's features and scores, no outcomes. `figures` (optional) adds columns to the
    per-night CSV."""

    name: str
    fit: Callable[[ModelCache], Any]
    fires: Callable[[Any, Any], bool]
    figures: Callable[[Any, Any], dict[str, Any]] | None = None


@dataclass
class _DriftToday:
    stats: dict[str, Any]
    rule: Any  # rules.Rule
    reference_mean: float
    shares: dict[date, float] = field(default_factory=dict)

    def share(self, night: Any) -> float:
        """The share of monitored features that drift tonight, as monitoring counts it."""
        from nightscore.features import FEATURES
        from nightscore.monitoring.drift_fast import fast_drift
        from nightscore.monitoring.monitor_drift import ScoredVersion, summarize

        day = night["service_date"].iloc[0]
        if day not in self.shares:
            result = fast_drift(self.stats, night, columns=list(FEATURES))
            version = ScoredVersion("flight_disruption_bench", 0, "", len(night))
            mean = float(night["score"].mean())
            self.shares[day] = summarize(result, version, self.reference_mean, mean).share_drifted
        return self.shares[day]


def _today_fit(model: ModelCache) -> _DriftToday:
    from nightscore.monitoring.drift_fast import reference_stats
    from nightscore.monitoring.rules import load_rules

    rule = load_rules().get("drift_share")
    if rule is None:
        raise SystemExit("the alert rules have no drift_share rule")
    reference = model.reference
    return _DriftToday(reference_stats(reference), rule, float(reference["score"].mean()))


TODAY = AlertRule(
    name="today",
    fit=_today_fit,
    fires=lambda state, night: bool(state.rule.breached(state.share(night))),
    figures=lambda state, night: {"today_drift_share": round(state.share(night), 3)},
)


@dataclass
class _Evening:
    profile: dict[str, Any]
    rule: Any  # rules.WarningRule
    assessments: dict[date, Any] = field(default_factory=dict)

    def assess(self, night: Any) -> Any:
        """Tonight against the champion's profile, as `evening.check_drift` judges it
        (Evidently's tests, which it runs for the record only, left out)."""
        from nightscore.monitoring.early_warning import check_night

        day = night["service_date"].iloc[0]
        if day not in self.assessments:
            self.assessments[day] = check_night(
                self.profile, night, self.rule, evidently_tests=False
            )
        return self.assessments[day]


def _early_warning_fit(model: ModelCache) -> _Evening:
    """The profile `TrainedModel.drift_profile` logs: the training frame with the
    champion's scores, its reference sample, each feature's mean |contribution| on it."""
    from nightscore.features import FEATURES
    from nightscore.monitoring.early_warning import build_profile
    from nightscore.monitoring.rules import load_rules

    scored = model.training_frame[["service_date", *FEATURES, "score"]]
    importance = model.importance["mean_abs_contribution"]
    return _Evening(build_profile(scored, model.reference, importance), load_rules().early_warning)


def _evening_figures(state: _Evening, night: Any) -> dict[str, Any]:
    found = state.assess(night)
    return {
        "early_warning_importance_excess": round(found.importance_excess, 3),
        "early_warning_score_z": None if found.score_z is None else round(found.score_z, 2),
        "early_warning_expected_auc": (
            None if found.expected_auc is None else round(found.expected_auc, 3)
        ),
        "early_warning_moved": " ".join(c.column for c in found.moved[:3]),
        # Every watched feature's z, for the learned bound (alerts_bound.learned).
        **{f"z_{c.column}": None if c.z is None else round(c.z, 3) for c in found.features},
    }


EARLY_WARNING = AlertRule(
    name="early_warning",
    fit=_early_warning_fit,
    fires=lambda state, night: bool(state.assess(night).warned),
    figures=_evening_figures,
)
RULES: list[AlertRule] = [TODAY, EARLY_WARNING]
PRODUCTION_RULE = "early_warning"


@dataclass
class NightRow:
    """One night: how its scores fared against its outcomes, and each rule's verdict."""

    service_date: date
    model: str
    flights: int  # scored
    labelled: int  # with an outcome: what the night is judged on
    roc_auc: float | None
    mean_score: float
    observed_rate: float
    why: str | None  # None: an ordinary night
    verdicts: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def bad(self) -> bool:
        return self.why is not None


def outcome(
    service_date: date, model: str, flights: int, y: Any, p: Any, auc_floor: float
) -> NightRow:
    """A night's outcome from its labelled flights' outcomes `y` and scores `p`."""
    from nightscore.metrics import classification_metrics
    from nightscore.monitoring.early_warning import bad_night

    m = classification_metrics(y, p, threshold=0.5)  # the threshold plays no part here
    rate = m["positives"] / m["rows"]
    return NightRow(
        service_date=service_date,
        model=model,
        flights=flights,
        labelled=m["rows"],
        roc_auc=m["roc_auc"],
        mean_score=m["mean_score"],
        observed_rate=rate,
        why=bad_night(m["roc_auc"], m["mean_score"], rate, auc_floor),
    )


def judge(reigns: Sequence[Reign], rules: Sequence[AlertRule], auc_floor: float) -> list[NightRow]:
    """Stage 4: every night of every period, its outcome and each rule's verdict."""
    from nightscore.features import LABEL

    rows = []
    states: dict[tuple[str, str], Any] = {}  # per rule and champion: fitted once
    for reign in reigns:
        started = time.monotonic()
        champion = reign.champion
        for rule in rules:
            if (rule.name, champion.id) not in states:
                states[rule.name, champion.id] = rule.fit(champion)
        judged = 0
        for day, night in reign.nights.groupby("service_date", sort=True):
            known = night[night[LABEL].notna()]
            if known.empty:
                continue  # no outcomes landed: nothing to judge the night by
            row = outcome(
                day, champion.id, len(night), known[LABEL].astype(int), known["score"], auc_floor
            )
            # The evening's view: what scoring saw, and its scores; never the outcomes.
            evening = night.drop(columns=[LABEL]).reset_index(drop=True)
            for rule in rules:
                state = states[rule.name, champion.id]
                row.verdicts[rule.name] = bool(rule.fires(state, evening))
                if rule.figures is not None:
                    row.figures |= rule.figures(state, evening)
            rows.append(row)
            judged += 1
        say(
            f"  {reign.period.id} ({champion.id} scoring): {judged} nights judged in "
            f"{time.monotonic() - started:.0f} s"
        )
    return rows


def write_nights(path: Path, rows: Sequence[NightRow], rules: Sequence[AlertRule]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for r in rows for k in r.figures})
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "service_date",
                "model",
                "flights",
                "labelled",
                "roc_auc",
                "mean_score",
                "observed_rate",
                "bad",
                "why",
                *(r.name for r in rules),
                *extra,
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r.service_date,
                    r.model,
                    r.flights,
                    r.labelled,
                    "" if r.roc_auc is None else f"{r.roc_auc:.4f}",
                    f"{r.mean_score:.4f}",
                    f"{r.observed_rate:.4f}",
                    int(r.bad),
                    r.why or "",
                    *(int(r.verdicts[x.name]) for x in rules),
                    *(r.figures.get(k, "") for k in extra),
                ]
            )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _line(cells: Sequence[Any], widths: Sequence[int]) -> str:
    first, *rest = zip(cells, widths, strict=True)
    return f"{first[0]:<{first[1]}}" + "".join(f"{c:>{w}}" for c, w in rest)


def report(tallies: dict[str, Tally]) -> None:
    widths = (16, 8, 6, 12, 12, 14, 10, 12, 18, 8)
    head = ("rule", "nights", "bad", "warned bad", "missed bad", "false alarms", "ordinary")
    print(_line((*head, "bad warned", "false-alarm rate", "goal"), widths))
    for name, t in tallies.items():
        counts = (t.nights, t.bad_nights, t.warned_bad, t.missed_bad, t.false_alarms)
        shares = (_pct(t.warned_share), _pct(t.false_alarm_rate))
        verdict = "met" if t.goal_met else "MISSED"
        print(_line((name, *counts, t.ordinary_nights, *shares, verdict), widths))
    print(
        f"goal: at least {GOAL_WARNED_SHARE:.0%} of bad nights warned, false alarms on at "
        f"most {GOAL_FALSE_ALARM_RATE:.0%} of ordinary nights (1 in 20)"
    )


def bound_figures(rows: Sequence[NightRow], auc_floor: float, miss: float) -> dict[str, Any]:
    """How far any evening warning could go on these nights (`alerts_bound`)."""
    import numpy as np
    import pandas as pd
    from alerts_bound import learned, own_world

    nights = pd.DataFrame(
        {
            "flights": [r.labelled for r in rows],
            "mean_score": [r.mean_score for r in rows],
            "expected_auc": [r.figures.get("early_warning_expected_auc") for r in rows],
        }
    ).astype("float64")
    numbers = pd.DataFrame([r.figures for r in rows]).apply(pd.to_numeric, errors="coerce")
    numbers = numbers.dropna(axis="columns", how="all")
    numbers["mean_score"] = nights["mean_score"]
    numbers["flights"] = nights["flights"]
    months = np.array([r.service_date.month for r in rows])
    return {
        "own_world": own_world(nights.dropna(), auc_floor, miss),
        "learned": learned(numbers, np.array([r.bad for r in rows]), months),
    }


def report_bounds(bounds: dict[str, Any]) -> None:
    world, fitted = bounds["own_world"], bounds["learned"]
    print(
        f"bound, the model's own world (every score right): {world['share_of_nights']:.0%} "
        f"of the nights bad by chance alone; the best possible warning there warns "
        f"{world['warned_bad_share']:.0%} of them at one false alarm in 20"
    )
    print(
        f"bound, learned month by month from every evening number: "
        f"{fitted['warned_bad']} of {fitted['bad_nights']} bad nights warned "
        f"({fitted['warned_bad_share']:.0%}) with {fitted['false_alarms']} false alarms in "
        f"{fitted['ordinary_nights']} ordinary nights; out-of-fold ROC AUC "
        f"{fitted['out_of_fold_auc']}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the cache folder")
    parser.add_argument("--retrain-days", type=int, default=91, help="nights per champion")
    parser.add_argument("--trials", type=int, default=3, help="Optuna trials per champion")
    parser.add_argument(
        "--tuning-timeout",
        type=float,
        default=3600.0,
        help="seconds per champion's tuning (the trials, not the clock, should end it)",
    )
    parser.add_argument("--nights-csv", type=Path, help="default: <cache>/nights.csv")
    parser.add_argument(
        "--until",
        choices=("warehouse", "features", "models", "rules"),
        default="rules",
        help="stop after this stage",
    )
    parser.add_argument(
        "--warehouse-url",
        default=os.environ.get("NIGHTSCORE_BENCH_WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL),
        help="the benchmark's warehouse (its database name must contain 'bench')",
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("NIGHTSCORE_BENCH_ADMIN_URL", DEFAULT_ADMIN_URL),
        help="a superuser URL on the same server (creates the database)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    cache = args.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(args.warehouse_url, args.admin_url, cache)
    stage_s = {}

    t = time.monotonic()
    loaded = warehouse(settings)
    stage_s["warehouse"] = round(time.monotonic() - t, 1)
    if args.until == "warehouse":
        return
    t = time.monotonic()
    frame = features(settings, cache)
    stage_s["features"] = round(time.monotonic() - t, 1)
    if args.until == "features":
        return
    t = time.monotonic()
    reigns = models(
        settings,
        cache,
        frame,
        retrain_days=args.retrain_days,
        trials=args.trials,
        timeout_s=args.tuning_timeout,
    )
    stage_s["models"] = round(time.monotonic() - t, 1)
    if args.until == "models":
        return

    from nightscore.monitoring.early_warning import CALIBRATION_MISS
    from nightscore.monitoring.rules import load_rules

    t = time.monotonic()
    say(f"stage 4: rules {', '.join(r.name for r in RULES)}, night by night")
    rows = judge(reigns, RULES, settings.gate_floor_roc_auc)
    stage_s["rules"] = round(time.monotonic() - t, 1)
    nights_csv = args.nights_csv or cache / "nights.csv"
    write_nights(nights_csv, rows, RULES)
    bad = [r.bad for r in rows]
    tallies = {rule.name: tally(bad, [r.verdicts[rule.name] for r in rows]) for rule in RULES}
    first, last = rows[0].service_date, rows[-1].service_date
    scored_by = {r.period.id: r.champion.id for r in reigns}
    reign_text = ", ".join(f"{p} by {c}" for p, c in scored_by.items())
    print(
        f"\n{len(rows)} nights, {first} to {last}, in {len(reigns)} periods of "
        f"{args.retrain_days} nights ({reign_text}; {args.trials} trials per challenger). "
        f"A night is bad when its ROC AUC < {settings.gate_floor_roc_auc:g} or "
        f"|mean risk - observed rate| > {CALIBRATION_MISS:g}. Per night: {nights_csv}"
    )
    report(tallies)
    bounds = bound_figures(rows, settings.gate_floor_roc_auc, CALIBRATION_MISS)
    report_bounds(bounds)
    details = {
        "rules": {
            name: t.figures()
            | {
                "missed_bad": t.missed_bad,
                "warned_share": None if t.warned_share is None else round(t.warned_share, 3),
                "false_alarm_rate": (
                    None if t.false_alarm_rate is None else round(t.false_alarm_rate, 3)
                ),
                "goal_met": t.goal_met,
            }
            for name, t in tallies.items()
        },
        "bounds": bounds,
        "production_rule": PRODUCTION_RULE,
        "first_night": first.isoformat(),
        "last_night": last.isoformat(),
        "scored_by": scored_by,
        "early_warning_rule": asdict(load_rules().early_warning),
        "retrain_days": args.retrain_days,
        "trials": args.trials,
        "rejected_batches": loaded["rejected_batches"],
        "stage_seconds": stage_s,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(details))
    print(json.dumps(tallies[PRODUCTION_RULE].figures()))


if __name__ == "__main__":
    main()
