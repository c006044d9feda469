"""The reasons kept for a prediction: the three largest contributions, ordered, signed;
words for every model feature."""

from __future__ import annotations

import numpy as np
import pytest

from nightscore.features import FEATURES
from nightscore.reasons import FEATURE_WORDS, REASON_COLUMNS, TOP, top_reasons

NAMES = ["a", "b", "c", "d", "e"]


def test_the_three_largest_by_absolute_contribution_are_kept_strongest_first_with_their_sign():
    contributions = np.array(
        [
            # a     b     c     d     e     bias (never a reason, however large)
            [0.1, -0.9, 0.3, 0.0, 0.5, 7.0],
            [-0.2, 0.05, 0.0, -0.6, 0.01, -7.0],
        ],
        dtype="float32",
    )
    names, effects = top_reasons(contributions, NAMES)
    assert names.tolist() == [["b", "e", "c"], ["d", "a", "b"]]
    np.testing.assert_array_equal(effects, np.float32([[-0.9, 0.5, 0.3], [-0.6, -0.2, 0.05]]))
    assert effects.dtype == np.float32


def test_on_random_rows_the_kept_ones_are_the_top_of_a_full_sort():
    rng = np.random.default_rng(7)
    contributions = rng.normal(size=(500, len(NAMES) + 1))
    names, effects = top_reasons(contributions, NAMES)
    for row, kept, signed in zip(contributions, names, effects, strict=True):
        ranked = sorted(range(len(NAMES)), key=lambda i: -abs(row[i]))[:TOP]
        assert kept.tolist() == [NAMES[i] for i in ranked]
        np.testing.assert_allclose(signed, row[ranked].astype("float32"))
        assert list(np.abs(signed)) == sorted(np.abs(signed), reverse=True)


def test_a_feature_that_did_not_move_the_score_is_no_reason():
    contributions = np.array([[0.0, 0.4, 0.0, 0.0, 0.0, 1.0]])
    names, effects = top_reasons(contributions, NAMES)
    assert names[0, 0] == "b" and effects[0, 0] == pytest.approx(0.4)
    assert names[0, 1:].tolist() == [None, None]
    assert np.isnan(effects[0, 1:]).all()


def test_no_rows_give_no_reasons():
    names, effects = top_reasons(np.zeros((0, len(NAMES) + 1), dtype="float32"), NAMES)
    assert names.shape == effects.shape == (0, TOP)


def test_contributions_that_do_not_fit_the_features_are_refused():
    with pytest.raises(ValueError, match="do not fit 5 features plus the bias"):
        top_reasons(np.zeros((2, 5)), NAMES)
    with pytest.raises(ValueError, match="2 features cannot give 3 reasons"):
        top_reasons(np.zeros((2, 3)), ["a", "b"])


def test_every_model_feature_has_words_and_nothing_else_does():
    assert set(FEATURE_WORDS) == set(FEATURES)
    assert all(words.strip() and "_" not in words for words in FEATURE_WORDS.values())
    assert len(set(FEATURE_WORDS.values())) == len(FEATURE_WORDS)  # no two read alike


def test_the_reason_columns_pair_a_feature_with_its_effect_per_rank():
    assert REASON_COLUMNS == (
        "reason_1_feature",
        "reason_1_effect",
        "reason_2_feature",
        "reason_2_effect",
        "reason_3_feature",
        "reason_3_effect",
    )
