"""The behaviour scorecard is monotonic: a worse feature value never gives more points."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from encours.risk.behaviour import DEFAULT_SCORECARD, Feature, Scorecard, quantile_edges

values = st.floats(min_value=-1000, max_value=100_000, allow_nan=False)


@pytest.mark.parametrize("feature", DEFAULT_SCORECARD.features, ids=lambda f: f.name)
@given(a=values, b=values)
def test_a_worse_value_never_gives_more_points(feature: Feature, a: float, b: float) -> None:
    better, worse = min(a, b), max(a, b)
    points = feature.score(np.array([better, worse]))
    assert points[0] >= points[1]


@given(rows=st.lists(st.tuples(*[values] * len(DEFAULT_SCORECARD.features)), min_size=2,
                     max_size=2))  # fmt: skip
def test_total_points_and_class_are_monotonic(rows: list[tuple[float, ...]]) -> None:
    better = np.minimum(rows[0], rows[1])
    worse = np.maximum(rows[0], rows[1])
    totals = []
    for profile in (better, worse):
        pairs = zip(DEFAULT_SCORECARD.features, profile, strict=True)
        totals.append(sum(int(f.score(np.array([v]))[0]) for f, v in pairs))
    assert totals[0] >= totals[1]
    grades = DEFAULT_SCORECARD.grade(np.array(totals))
    assert grades[0] <= grades[1]


def test_bins_points_and_missing_values() -> None:
    late = Feature("late_share", (0, 10, 25, 50), (20, 16, 10, 5, 0), 10)
    got = late.score(np.array([0, 0.5, 10, 10.01, 25, 49, 50, 51, np.nan]))
    assert got.tolist() == [20, 16, 16, 10, 10, 5, 5, 0, 10]
    assert late.bin_label(0) == "<= 0" and late.bin_label(4) == "> 50"
    assert late.bin_label(2) == "10-25"


def test_default_scorecard_totals_100_and_bands() -> None:
    assert DEFAULT_SCORECARD.max_points == 100
    grades = DEFAULT_SCORECARD.grade(np.array([100, 80, 79, 65, 50, 35, 34, 0]))
    assert grades.tolist() == [0, 0, 1, 1, 2, 3, 4, 4]


@pytest.mark.parametrize(
    ("edges", "points"),
    [((0, 10), (5, 8, 0)), ((10, 0), (5, 3, 0)), ((0, 10), (5, 3))],
)
def test_a_non_monotonic_scorecard_is_refused(edges: tuple, points: tuple) -> None:
    with pytest.raises(ValueError):
        Scorecard(features=(Feature("x", edges, points, min(points)),))


def test_quantile_edges_are_increasing() -> None:
    edges = quantile_edges(np.array([1, 2, 3, 4, 5, 6, 7, 8, np.nan]), 4)
    assert list(edges) == sorted(set(edges)) and len(edges) == 3
    Feature("x", edges, (3, 2, 1, 0), 1)  # usable as bins
