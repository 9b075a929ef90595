"""Drift statistics from merged bin counts, against scipy and the textbook on the same data."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from inferobs.drift.baseline import Numeric
from inferobs.drift.statistics import EMPTY_BIN, chi2, jensen_shannon, ks, merge, psi, wasserstein

RNG = np.random.default_rng(3)
# each value sits on its bin's representative value, so binned and sample statistics coincide
VALUES = np.array([-2.5, -1.0, -0.25, 0.5, 1.25, 3.0])


def on_the_bins(n: int, weights: list[float]) -> npt.NDArray[np.float64]:
    return RNG.choice(VALUES, size=n, p=np.array(weights) / sum(weights))


def counts(sample: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.array([np.sum(sample == v) for v in VALUES], dtype=float)


A = on_the_bins(4000, [1, 2, 4, 4, 2, 1])
B = on_the_bins(3000, [1, 1, 2, 4, 4, 3])


def test_psi_is_the_textbook_sum() -> None:
    p, q = counts(A) / len(A), counts(B) / len(B)
    expected = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert psi(counts(A), counts(B)) == pytest.approx(expected, abs=1e-9)
    assert psi(counts(A), counts(A)) == 0.0


def test_psi_floors_empty_bins_instead_of_going_infinite() -> None:
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.4, 0.4, 0.2])
    floored_p = np.maximum(p, EMPTY_BIN) / np.maximum(p, EMPTY_BIN).sum()
    expected = float(np.sum((q - floored_p) * np.log(q / floored_p)))
    assert psi(p, q) == pytest.approx(expected, abs=1e-12) and math.isfinite(psi(p, q))


def test_jensen_shannon_matches_scipy_in_base_2() -> None:
    p, q = counts(A), counts(B)
    assert jensen_shannon(p, q) == pytest.approx(
        jensenshannon(p / p.sum(), q / q.sum(), base=2), abs=1e-9
    )
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


def test_wasserstein_on_bins_matches_the_sample_distance() -> None:
    assert wasserstein(counts(A), counts(B), VALUES) == pytest.approx(
        wasserstein_distance(A, B), abs=1e-9
    )


def test_ks_on_bins_matches_the_sample_statistic() -> None:
    assert ks(counts(A), counts(B)) == pytest.approx(ks_2samp(A, B).statistic, abs=1e-9)


def test_chi2_matches_scipy_and_leaves_out_categories_nobody_saw() -> None:
    reference, observed = counts(A), counts(B)
    expected = chi2_contingency(np.array([reference, observed]), correction=False)
    result = chi2(np.append(reference, 0), np.append(observed, 0))  # an empty "other"
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert result.dof == 5


def test_counts_from_fifty_instances_merge_into_the_pooled_statistic() -> None:
    pooled = on_the_bins(50_000, [3, 1, 1, 2, 2, 1])
    parts = np.array_split(RNG.permutation(pooled), 50)  # fifty instances, uneven traffic
    merged = merge(counts(part) for part in parts)
    assert np.array_equal(merged, counts(pooled))
    for statistic in (psi, jensen_shannon, ks):
        assert statistic(counts(A), merged) == statistic(counts(A), counts(pooled))


def test_a_baseline_bins_values_the_way_the_statistics_expect() -> None:
    sample = RNG.normal(size=5000)
    column = Numeric.build(sample, bins=8)
    # right-closed bins: a value equal to an edge belongs to the bin below it
    index = np.searchsorted(column.edges, sample, side="left")
    shares = np.bincount(index, minlength=8) / len(sample)
    assert tuple(shares) == pytest.approx(column.proportions)
    for k, mean in enumerate(column.values):
        assert mean == pytest.approx(float(sample[index == k].mean()))
    assert ks(column.proportions, shares) == 0.0


@pytest.mark.parametrize(
    ("reference", "observed", "message"),
    [
        ([1, 2], [1, 2, 3], "2 reference bins against 3 observed"),
        ([0, 0], [1, 1], "reference: expected non-negative counts"),
        ([1, -1], [1, 1], "reference: expected"),
        ([1, math.nan], [1, 1], "reference: expected"),
    ],
)
def test_bad_counts_are_named(reference: list[float], observed: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        psi(reference, observed)


def test_counts_of_different_bins_do_not_merge() -> None:
    with pytest.raises(ValueError, match="different bins"):
        merge([[1, 2], [1, 2, 3]])
