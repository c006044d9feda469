"""The feature query's rendering is checked in, so that a change to it shows as a SQL diff."""

from __future__ import annotations

import difflib

from nightscore.features import GOLDEN, feature_sql


def test_the_rendered_feature_query_is_the_checked_in_golden_file():
    rendered, golden = feature_sql(), GOLDEN.read_text()
    diff = "".join(
        difflib.unified_diff(
            golden.splitlines(True), rendered.splitlines(True), "golden", "rendered", n=1
        )
    )
    assert rendered == golden, f"run `make golden` and review the diff:\n{diff}"


def test_scoring_runs_the_same_query_without_the_sort():
    ordered, unordered = feature_sql(ordered=True), feature_sql(ordered=False)
    assert "ORDER BY night.service_date" in ordered
    assert unordered == ordered.replace(
        "ORDER BY night.service_date, night.carrier, night.flight, night.origin\n", ""
    )


def test_the_label_is_the_warehouse_function_and_history_ends_two_days_before():
    query = feature_sql()
    assert "arr_delay >= 15" not in query
    assert query.count("core.disrupted(o.cancelled, o.diverted, o.arr_delay)") == 3
    assert "'2 days' PRECEDING)" in query and "'1 days' PRECEDING" not in query
