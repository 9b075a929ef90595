"""Baselines: built from reference data, written as JSON, read back exactly or refused by field."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from inferobs.cli import main
from inferobs.drift.baseline import (
    Baseline,
    BaselineError,
    Categorical,
    ClassScores,
    Numeric,
)

RNG = np.random.default_rng(11)
N = 10_000


def reference() -> dict[str, Any]:
    return {
        "score": RNG.normal(size=N),
        "age": RNG.integers(18, 90, N),
        "country": RNG.choice(["fr", "de", "us"], N, p=[0.5, 0.3, 0.2]),
        "label": RNG.integers(0, 3, N),
    }


def test_numeric_bins_hold_equal_shares_and_their_own_means() -> None:
    data = reference()
    built = Baseline.from_frame(data, prediction="label", features=["score"], bins=10)
    score = built.features["score"]
    assert isinstance(score, Numeric)
    assert len(score.edges) == 9 and len(score.proportions) == 10
    assert all(p == pytest.approx(0.1, abs=0.002) for p in score.proportions)
    # right-closed bins, the first and last open-ended: each bin's mean lies inside it
    bounds = [-np.inf, *score.edges, np.inf]
    for (low, high), mean in zip(pairwise(bounds), score.values, strict=True):
        assert low < mean <= high
    assert score.mean == pytest.approx(float(np.mean(data["score"])))
    assert score.minimum == pytest.approx(float(np.min(data["score"]))) and score.missing == 0


def test_missing_values_are_a_share_not_a_bin() -> None:
    values = np.array([1.0, 2.0, np.nan, 3.0, np.inf] * 100)
    column = Numeric.build(values, bins=4)
    assert column.missing == pytest.approx(0.4)
    assert sum(column.proportions) == pytest.approx(1.0)


def test_a_value_most_rows_share_merges_bins_instead_of_making_empty_ones() -> None:
    values = np.array([0.0] * 900 + list(range(1, 101)), dtype=float)
    column = Numeric.build(values, bins=10)
    assert len(set(column.edges)) == len(column.edges)  # no repeated edge
    assert column.proportions[0] == pytest.approx(0.9)


def test_labels_and_text_are_categories_with_an_other_bucket() -> None:
    built = Baseline.from_frame(reference(), prediction="label", features=["country", "age"])
    label, country, age = built.prediction[1], built.features["country"], built.features["age"]
    assert isinstance(label, Categorical) and label.categories == ("0", "1", "2")
    assert isinstance(country, Categorical) and country.categories == ("de", "fr", "us")
    assert country.proportions[-1] == 0.0  # OTHER: the reference never had it
    assert country.proportions[1] == pytest.approx(0.5, abs=0.02)
    assert isinstance(age, Numeric)  # 72 distinct integers: a number, not labels
    forced = Baseline.from_frame(
        reference(), prediction="label", features=["age"], categorical=["age"]
    )
    assert isinstance(forced.features["age"], Categorical)


def test_probability_vectors_get_score_bins_per_class_and_the_argmax_label() -> None:
    probs = RNG.dirichlet([4, 2, 1], N)
    built = Baseline.from_frame({"p": list(probs)}, prediction="p", classes=["cat", "dog", "eel"])
    column = built.prediction[1]
    assert isinstance(column, ClassScores)
    assert column.classes == ("cat", "dog", "eel") and len(column.scores) == 3
    argmax = np.bincount(np.argmax(probs, axis=1), minlength=3) / N
    assert column.label.proportions[:3] == pytest.approx(tuple(argmax))
    two_d = Baseline.from_frame({"p": probs}, prediction="p")
    assert isinstance(two_d.prediction[1], ClassScores)
    with pytest.raises(BaselineError, match="2 class names for vectors of 3 scores"):
        Baseline.from_frame({"p": probs}, prediction="p", classes=["a", "b"])


def test_a_baseline_reads_back_exactly_and_keeps_its_hash(tmp_path: Path) -> None:
    probs = RNG.dirichlet([1, 1], N)
    built = Baseline.from_frame(
        {**reference(), "p": list(probs)}, prediction="p", features=["score", "country", "label"]
    )
    path = tmp_path / "baseline.json"
    built.save(str(path))
    again = Baseline.load(str(path))
    assert again == built and again.hash == built.hash
    json.loads(path.read_text())  # plain JSON, no NaN


def test_a_pandas_frame_builds_the_same_baseline_as_its_columns() -> None:
    import pandas as pd

    data = reference()
    frame = pd.DataFrame(data)
    a = Baseline.from_frame(
        frame, prediction="label", features=["score", "country"], source_hash="x"
    )
    b = Baseline.from_frame(
        data, prediction="label", features=["score", "country"], source_hash="x"
    )
    assert a == b


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema=99), "schema=99: written by a newer inferobs"),
        (lambda d: d.update(schema="1"), "schema='1': expected a positive integer"),
        (
            lambda d: d["features"]["score"].update(edges=[2.0, 1.0]),
            "features.score.edges: not increasing",
        ),
        (lambda d: d["features"]["score"]["proportions"].pop(), "features.score: 9 edges need 10"),
        (lambda d: d["features"]["score"].update(kind="fuzzy"), "features.score.kind='fuzzy'"),
        (
            lambda d: d["prediction"]["proportions"].__setitem__(0, 0.9),
            "prediction.proportions: expected shares of 1",
        ),
        (lambda d: d["prediction"].update(categories=["0", "0", "1"]), "listed twice"),
        (
            lambda d: d["features"]["score"]["values"].__setitem__(0, None),
            r"features.score.values\[0\]=None",
        ),
        (lambda d: d.pop("source_hash"), "source_hash: expected a string"),
    ],
)
def test_a_malformed_baseline_is_refused_naming_the_field(
    tmp_path: Path, change: Any, message: str
) -> None:
    data = Baseline.from_frame(reference(), prediction="label", features=["score"]).to_dict()
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match=message):
        Baseline.load(str(path))


def test_files_that_are_no_baseline_say_so(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(BaselineError, match=r"x\.json: not a JSON baseline"):
        Baseline.load(str(tmp_path / "x.json"))
    with pytest.raises(BaselineError, match="cannot be read"):
        Baseline.load(str(tmp_path / "absent.json"))


def build(*args: str) -> Any:
    return CliRunner().invoke(main, ["baseline", "build", *args])


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_obs_baseline_build_reads_tables(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    frame = pd.DataFrame(reference())
    data = tmp_path / f"ref.{suffix}"
    if suffix == "csv":
        frame.to_csv(data, index=False)
    elif suffix == "parquet":
        frame.to_parquet(data)
    else:
        frame.to_json(data, orient="records", lines=True)
    out = tmp_path / "b.json"
    result = build(
        str(data), "--prediction", "label", "--features", "score,country", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    built = Baseline.load(str(out))
    assert set(built.features) == {"score", "country"}
    assert len(built.source_hash) == 64 and built.hash in result.stderr


def test_obs_baseline_build_reads_npz_probability_matrices(tmp_path: Path) -> None:
    data = tmp_path / "ref.npz"
    np.savez(data, probs=RNG.dirichlet([1, 1, 1], 500), x=RNG.normal(size=500))
    out = tmp_path / "b.json"
    result = build(str(data), "--prediction", "probs", "--features", "x", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert isinstance(Baseline.load(str(out)).prediction[1], ClassScores)


def test_obs_baseline_build_names_what_is_wrong(tmp_path: Path) -> None:
    data = tmp_path / "ref.csv"
    data.write_text("a,b\n1,2\n")
    out = str(tmp_path / "b.json")
    result = build(str(data), "--prediction", "nope", "--out", out)
    assert result.exit_code == 1 and "no column 'nope' (the data has a, b)" in result.output
    result = build(str(tmp_path / "ref.txt"), "--prediction", "a", "--out", out)
    assert result.exit_code == 1 and "cannot be read" in result.output
    (tmp_path / "odd.xlsx").write_text("x")
    result = build(str(tmp_path / "odd.xlsx"), "--prediction", "a", "--out", out)
    assert result.exit_code == 1 and "expected .csv" in result.output
