"""Drift of the features and of the score, between the model's reference sample and a night.

Two ways to the same answer:

- `evidently_drift`: Evidently 0.7's `Report([DataDriftPreset()])` on the two frames, with
  Evidently's default test per column. It gives the day's HTML report (`save_html`).
- `drift_fast.fast_drift`: the same tests, computed from statistics of the reference precomputed
  once per model (`drift_fast.reference_stats`, JSON-ready) and from the current rows streamed in
  chunks, so 10M rows need no more memory than 1M. The evening check runs it on tonight's
  rows (`early_warning.check_night`); the morning's monitoring uses Evidently, which
  also makes the HTML report. `benchmarks/drift.py` measures the evening check against
  Evidently.

The tests, how Evidently chooses them and the result types are in `drift_methods`; the
fast path is `drift_fast`. pandas and Evidently are imported when used.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightscore import store
from nightscore.features import FEATURES
from nightscore.monitoring.drift_methods import (
    BY_EVIDENTLY_NAME,
    CATEGORICAL_KIND,
    NUMERIC,
    SCORE,
    ColumnDrift,
    DriftResult,
    clean,
    kind,
    with_score,
)

if TYPE_CHECKING:
    import pandas as pd


# A day's HTML report must stay below this (it is attached to or linked from mail).
HTML_MAX_BYTES = 5_000_000


# --- Evidently ----------------------------------------------------------------------------


def evidently_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] = FEATURES,
    score: str | None = SCORE,
    *,
    timestamp: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> DriftResult:
    """Evidently's DataDriftPreset, default settings, on `columns` (and the score column if
    both frames have it). The result keeps Evidently's snapshot for `save_html` and for a
    workspace; `timestamp` (the service date) places it on the workspace's timeline."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = with_score(columns, score, reference, current)
    for name in names:
        if clean(reference[name]).empty:
            raise ValueError(f"the reference has no values in column {name!r}")
    # Evidently fails the whole report on a column with no values: leave those out.
    skipped = tuple(n for n in names if clean(current[n]).empty)
    names = [n for n in names if n not in skipped]
    kinds = {name: kind(name, reference) for name in names}
    definition = DataDefinition(
        numerical_columns=[n for n in names if kinds[n] == NUMERIC],
        categorical_columns=[n for n in names if kinds[n] == CATEGORICAL_KIND],
    )
    # include_tests: Evidently's own verdict per column ("FAIL" = drift), read back below.
    report = Report([DataDriftPreset(columns=names)], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(current[names], data_definition=definition),
        Dataset.from_pandas(reference[names], data_definition=definition),
        timestamp=timestamp,
        metadata=metadata,
    )
    found = read_snapshot(snapshot.dict(), kinds)
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"Evidently's report has no drift for: {', '.join(missing)}")
    return DriftResult(
        columns=tuple(found[n] for n in names if n != score),
        score=found.get(score) if score in names else None,
        reference_rows=len(reference),
        current_rows=len(current),
        skipped=skipped,
        snapshot=snapshot,
    )


def read_snapshot(report: dict[str, Any], kinds: dict[str, str]) -> dict[str, ColumnDrift]:
    """Per-column drift from `Snapshot.dict()`: each `ValueDrift` metric gives the method
    (Evidently's display name), threshold and statistic; its test says whether it drifted."""
    verdicts = {}
    for test in report.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            verdicts[params["column"]] = test["status"] == "FAIL"
    found = {}
    for metric in report["metrics"]:
        config = metric.get("config", {})
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        name, statistic = config["column"], float(metric["value"])
        method = BY_EVIDENTLY_NAME.get(config["method"])
        threshold = float(config["threshold"])
        drifted = verdicts.get(name)
        if drifted is None:  # no test result: apply the method's rule
            if method is None:
                raise ValueError(f"unknown Evidently drift method {config['method']!r}")
            drifted = method.drifted(statistic, threshold)
        found[name] = ColumnDrift(
            column=name,
            kind=kinds.get(name, NUMERIC),
            method=method.name if method else config["method"],
            statistic=statistic,
            threshold=threshold,
            drifted=bool(drifted),
        )
    return found


def save_html(snapshot: Any, path: str | Path) -> int:
    """Write the day's HTML report to the store; returns its size in bytes (see
    HTML_MAX_BYTES).

    Evidently's page embeds its 3.5 MB JavaScript bundle, and 0.7 also writes every
    detail graph twice (inside the table widget, and in the page's graph map, which is
    the one the page reads). For ~50 columns that is about 6.7 MB. `compact_html` drops
    the copy, shortens floats to 6 significant digits and stores the one Plotly theme
    once, which brings a day's report to about 4 MB with the same content.
    """
    html = compact_html(snapshot.get_html_str(as_iframe=False))
    data = html.encode("utf-8")
    store.write_bytes(str(path), data)
    return len(data)


_DATA_BLOCK = re.compile(
    r"var (?P<id>metric_[0-9a-f]+) = (?P<dashboard>.*);\n"
    r"(?P<gap>\s*)var additional_graphs_(?P=id) = (?P<graphs>.*);\n"
)
_TEMPLATE_REF = "__nightscore_plotly_template_"
_RESTORE_TEMPLATES = """
(function (templates, roots) {
  const walk = (o) => {
    if (o === null || typeof o !== "object") return;
    for (const key of Object.keys(o)) {
      const v = o[key];
      if (typeof v === "string" && v.startsWith("%(ref)s")) {
        o[key] = JSON.parse(templates[Number(v.slice(%(len)d))]);
      } else {
        walk(v);
      }
    }
  };
  roots.forEach(walk);
})(%(templates)s, [%(roots)s]);
"""


def compact_html(html: str) -> str:
    """Evidently's report page, smaller and showing the same (unchanged if its layout is
    not the one expected)."""
    match = _DATA_BLOCK.search(html)
    if match is None:
        return html
    try:
        dashboard = json.loads(match["dashboard"])
        graphs = json.loads(match["graphs"])
    except json.JSONDecodeError:
        return html

    def drop_nested_graphs(widget: dict[str, Any]) -> None:
        widget.pop("additionalGraphs", None)
        for child in widget.get("widgets") or []:
            drop_nested_graphs(child)

    for widget in dashboard.get("widgets", []):
        drop_nested_graphs(widget)
    templates: list[str] = []
    dashboard = _shorten(dashboard, templates)
    graphs = _shorten(graphs, templates)
    compact: dict[str, Any] = {"separators": (",", ":"), "allow_nan": True}
    name = match["id"]
    block = (
        f"var {name} = {json.dumps(dashboard, **compact)};\n"
        f"{match['gap']}var additional_graphs_{name} = {json.dumps(graphs, **compact)};\n"
    )
    if templates:
        block += _RESTORE_TEMPLATES % {
            "ref": _TEMPLATE_REF,
            "len": len(_TEMPLATE_REF),
            "templates": json.dumps(templates),
            "roots": f"{name}, additional_graphs_{name}",
        }
    return html[: match.start()] + block + html[match.end() :]


def _shorten(value: Any, templates: list[str]) -> Any:
    """Floats to 6 significant digits; each Plotly `layout.template` by reference."""
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else value
    if isinstance(value, list):
        return [_shorten(v, templates) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if key == "template" and isinstance(v, dict):
                text = json.dumps(v, separators=(",", ":"), allow_nan=True)
                if text not in templates:
                    templates.append(text)
                out[key] = f"{_TEMPLATE_REF}{templates.index(text)}"
            else:
                out[key] = _shorten(v, templates)
        return out
    return value
