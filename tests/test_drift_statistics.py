"""Drift statistics from merged bin counts, against scipy and the textbook on the same data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from inferobs.drift.baseline import Numeric
from inferobs.drift.statistics import (
    EMPTY_BIN,
    chi2,
    chi2_rows,
    jensen_shannon,
    jensen_shannon_rows,
    ks,
    ks_rows,
    merge,
    psi,
    psi_rows,
    wasserstein,
    wasserstein_rows,
)

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


# Row-wise: one reference against a matrix of periods' counts, as compare() uses them.


def periods(rows: int, bins: int) -> npt.NDArray[np.float64]:
    """Counts of ``rows`` periods: some bins empty, every fifth period empty altogether."""
    observed = RNG.integers(0, 40, size=(rows, bins)).astype(np.float64)
    observed[RNG.random((rows, bins)) < 0.3] = 0.0
    observed[::5] = 0.0
    return observed


def with_an_empty_bin(bins: int) -> npt.NDArray[np.float64]:
    reference = RNG.random(bins)
    reference[1] = 0.0
    shares: npt.NDArray[np.float64] = reference / reference.sum()
    return shares


def test_rows_with_no_observations_have_no_statistic() -> None:
    reference, observed = with_an_empty_bin(6), periods(40, 6)
    empty = observed.sum(axis=1) == 0
    assert empty.any() and not empty.all()
    for rows in (
        psi_rows(reference, observed),
        jensen_shannon_rows(reference, observed),
        wasserstein_rows(reference, observed, VALUES),
        ks_rows(reference, observed),
    ):
        assert rows.shape == (40,)
        assert np.all(np.isnan(rows[empty])) and np.all(np.isfinite(rows[~empty]))


def test_psi_rows_are_the_floored_textbook_sum() -> None:
    reference, observed = with_an_empty_bin(7), periods(60, 7)
    rows = psi_rows(reference, observed)
    p = np.maximum(reference, EMPTY_BIN) / np.maximum(reference, EMPTY_BIN).sum()
    for value, counts in zip(rows, observed, strict=True):
        if counts.sum() == 0:
            continue
        q = np.maximum(counts / counts.sum(), EMPTY_BIN)
        q /= q.sum()
        expected = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
        assert value == pytest.approx(expected, abs=1e-9)
        assert psi(reference, counts) == pytest.approx(value, abs=1e-12)


def test_jensen_shannon_rows_match_scipy() -> None:
    reference, observed = with_an_empty_bin(8), periods(60, 8)
    rows = jensen_shannon_rows(reference, observed)
    for value, counts in zip(rows, observed, strict=True):
        if counts.sum() > 0:
            assert value == pytest.approx(jensenshannon(reference, counts, base=2), abs=1e-9)
            assert jensen_shannon(reference, counts) == pytest.approx(value, abs=1e-12)


def test_wasserstein_rows_match_scipy_whatever_the_order_of_the_bin_values() -> None:
    reference, observed = with_an_empty_bin(9), periods(60, 9)
    values = RNG.normal(size=9) * 3  # not sorted
    values[4] = values[7]  # and two bins at one value
    rows = wasserstein_rows(reference, observed, values)
    for value, counts in zip(rows, observed, strict=True):
        if counts.sum() > 0:
            expected = wasserstein_distance(values, values, reference, counts)
            assert value == pytest.approx(expected, abs=1e-9)
            assert wasserstein(reference, counts, values) == pytest.approx(value, abs=1e-12)


def test_ks_rows_are_the_largest_gap_between_the_cdfs() -> None:
    reference, observed = with_an_empty_bin(6), periods(60, 6)
    rows = ks_rows(reference, observed)
    for value, counts in zip(rows, observed, strict=True):
        if counts.sum() > 0:
            gaps = np.cumsum(reference) - np.cumsum(counts / counts.sum())
            assert value == pytest.approx(float(np.max(np.abs(gaps))), abs=1e-9)
            assert ks(reference, counts) == pytest.approx(value, abs=1e-12)


def scipy_chi2(
    reference: npt.NDArray[np.float64], counts: npt.NDArray[np.float64]
) -> tuple[float, float, int]:
    """The 2 x k test as scipy computes it, categories empty on both sides left out."""
    table = np.array([reference, counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0, 0
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue), int(result.dof)


@pytest.mark.parametrize(
    "reference",
    [
        np.array([120.0, 0.0, 45.0, 300.0, 8.0, 0.0]),  # categories the reference never had
        np.array([0.0, 50.0, 0.0, 0.0, 0.0, 0.0]),  # one: many rows leave fewer than two
        np.zeros(6),  # no reference at all: no test
    ],
)
def test_chi2_rows_match_scipy_including_rows_that_are_no_test(
    reference: npt.NDArray[np.float64],
) -> None:
    observed = periods(80, 6)
    observed[3] = [0, 7, 0, 0, 0, 0]  # one category on both sides
    rows = chi2_rows(reference, observed)
    assert rows.statistic.shape == rows.p_value.shape == rows.dof.shape == (80,)
    for n, counts in enumerate(observed):
        statistic, p_value, dof = scipy_chi2(reference, counts)
        assert rows.statistic[n] == pytest.approx(statistic, rel=1e-9, abs=1e-9)
        assert rows.p_value[n] == pytest.approx(p_value, rel=1e-9, abs=1e-9)
        assert rows.dof[n] == dof
        one = chi2(reference, counts)
        assert (one.statistic, one.p_value, one.dof) == pytest.approx((statistic, p_value, dof))
    empty = observed.sum(axis=1) == 0
    assert np.all(rows.statistic[empty] == 0.0) and np.all(rows.p_value[empty] == 1.0)


def test_chi2_rows_of_fewer_than_two_categories_or_no_counts_are_no_test() -> None:
    rows = chi2_rows([0, 50, 0, 0], [[0, 7, 0, 0], [0, 0, 0, 0], [0, 0, 3, 0], [0, 4, 3, 0]])
    assert rows.statistic[:2].tolist() == [0.0, 0.0] and rows.p_value[:2].tolist() == [1.0, 1.0]
    assert rows.dof.tolist() == [0, 0, 1, 1]
    assert rows.statistic[2] == pytest.approx(53.0)  # [[50, 0], [0, 3]]: N = 53
    assert rows.p_value[3] < 1.0
    nothing = chi2_rows([0, 0, 0], [[1, 2, 3]])
    assert (nothing.statistic[0], nothing.p_value[0], nothing.dof[0]) == (0.0, 1.0, 0)


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        ([1.0, 2.0, 3.0], "observed: expected a matrix of counts"),
        ([[1.0, -2.0, 3.0]], "observed: expected a matrix of counts"),
        ([[1.0, math.inf, 3.0]], "observed: expected a matrix of counts"),
        ([[1.0, 2.0]], "3 reference bins against 2 observed"),
    ],
)
def test_bad_matrices_are_named(observed: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        psi_rows([1, 2, 3], observed)
