"""Reasons for every prediction, on the real warehouse and a real MLflow registry: the
contributions add up to the model's margin, the three stored are the largest and in
order with their sign, the analytics views show them in words, and K partitions store
the same reasons as one run."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from nightscore import scoring
from nightscore.features import FEATURES, KEY_COLUMNS, build_features, feature_types
from nightscore.reasons import FEATURE_WORDS, TOP
from nightscore.warehouse.db import engine_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = date(2013, 3, 6)
STORED = ", ".join(f"reason_{n}_feature, reason_{n}_effect" for n in range(1, TOP + 1))


@pytest.fixture(scope="module")
def settings(champion_settings):
    """The session's champion (tests/conftest.py)."""
    return champion_settings


@pytest.fixture(scope="module")
def night(settings):
    """S scored by the champion; its features and exact contributions, by flight."""
    scoring.score(S, settings)
    model = scoring.champion(settings)
    features = build_features(engine_for(settings), S, S)
    return model, features, model.contributions(features)


def rows(settings, sql, **params):
    with engine_for(settings).connect() as conn:
        return conn.execute(text(sql), params).all()


def stored(settings):
    """(carrier, flight, origin) -> (score, [(feature, effect) x 3]) of S's predictions."""
    found = rows(
        settings,
        f"SELECT carrier, flight, origin, score, {STORED} FROM scoring.predictions "
        "WHERE service_date = :d AND model_name = :m",
        d=S,
        m=settings.model_name,
    )
    return {tuple(r[:3]): (r[3], [(r[4 + 2 * i], r[5 + 2 * i]) for i in range(TOP)]) for r in found}


def test_contributions_plus_the_bias_are_the_models_margin_on_every_flight(night):
    import xgboost

    model, features, contributions = night
    assert contributions.shape == (len(features), len(FEATURES) + 1)
    matrix = xgboost.DMatrix(
        model.encoding.model_input(features),
        feature_names=list(FEATURES),
        feature_types=feature_types(),
        enable_categorical=True,
    )
    margin = model.model.predict(matrix, output_margin=True, iteration_range=model.iteration_range)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, atol=1e-4)

    # The bias is the same for every flight: the model's base margin.
    assert np.ptp(contributions[:, -1]) == 0
    # And the margin is the score's log-odds.
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), model.predict(features), atol=1e-6)


def test_the_fast_contributions_are_xgboosts_own_on_every_flight(night):
    """nightscore.treeshap's tables against XGBoost's pred_contribs, on the registered
    champion loaded as scoring loads it."""
    model, features, contributions = night
    assert model.fast_contributions  # the champion's tables fit their budget
    np.testing.assert_allclose(
        contributions, model.xgboost_contributions(features), rtol=0, atol=2e-5
    )


def test_every_prediction_keeps_its_three_largest_contributions_in_order_with_their_sign(
    settings, night
):
    _, features, contributions = night
    by_flight = stored(settings)
    assert len(by_flight) == len(features) > 500
    keys = features[list(KEY_COLUMNS[1:])].itertuples(index=False, name=None)
    for key, row in zip(keys, contributions, strict=True):
        _, reasons = by_flight[key]
        per_feature = row[:-1]
        ranked = np.argsort(-np.abs(per_feature), kind="stable")[:TOP]
        assert [name for name, _ in reasons] == [FEATURES[i] for i in ranked], key
        effects = np.array([effect for _, effect in reasons])
        np.testing.assert_allclose(effects, per_feature[ranked], rtol=1e-6, atol=1e-7)
        # The direction: a reason that raised the risk is stored positive, and so on.
        assert (np.sign(effects) == np.sign(per_feature[ranked])).all(), key
        assert list(np.abs(effects)) == sorted(np.abs(effects), reverse=True), key


def test_reasons_move_the_risk_the_way_their_sign_says(settings, night):
    """Among flights with the same strongest reason, a positive one comes with a higher
    risk than a negative one (a model behaviour check, on the whole night)."""
    by_flight = stored(settings)
    groups: dict[str, dict[bool, list[float]]] = {}
    for score, reasons in by_flight.values():
        feature, effect = reasons[0]
        groups.setdefault(feature, {True: [], False: []})[effect > 0].append(score)
    both = {f: g for f, g in groups.items() if len(g[True]) >= 20 and len(g[False]) >= 20}
    assert both, f"no strongest reason raises and lowers the risk often enough: {groups.keys()}"
    for feature, group in both.items():
        assert np.mean(group[True]) > np.mean(group[False]), feature


def test_analysts_read_the_reasons_in_words_on_every_prediction(settings, night):
    by_flight = stored(settings)
    words = ", ".join(f"reason_{n}, reason_{n}_effect" for n in range(1, TOP + 1))
    shown = rows(
        settings,
        f"SELECT carrier, flight, origin, {words} FROM analytics.predictions "
        "WHERE service_date = :d AND model_name = :m",
        d=S,
        m=settings.model_name,
    )
    assert len(shown) == len(by_flight)
    for r in shown:
        _, reasons = by_flight[tuple(r[:3])]
        assert [r[3 + 2 * i] for i in range(TOP)] == [FEATURE_WORDS[f] for f, _ in reasons]
        assert [r[4 + 2 * i] for i in range(TOP)] == [effect for _, effect in reasons]
    tonight = rows(
        settings,
        "SELECT count(*), count(reason_1), count(reason_3_effect) FROM analytics.tonight "
        "WHERE model_name = :m",
        m=settings.model_name,
    )
    assert tonight == [(len(by_flight),) * 3]


def test_k_partitions_store_the_same_reasons_as_one_run(settings, night):
    one = stored(settings)
    planned = scoring.plan(S, settings, 3)
    for part in range(3):
        scoring.score_partition(planned, part, settings)
    scoring.publish(planned, settings)
    assert stored(settings) == one


def test_without_reasons_the_predictions_are_stored_with_none(settings, night):
    off = settings.replace(scoring_reasons=False)
    scoring.score(S, off)
    reasons = [r for _, rs in stored(settings).values() for r in rs]
    assert reasons and set(reasons) == {(None, None)}
    scoring.score(S, settings)  # as the other tests found it
    assert all(rs[0][0] for _, rs in stored(settings).values())
