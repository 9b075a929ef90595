"""Settings: strict at configure time, lenient (but loud) from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import inferobs as obs
from inferobs.config import Settings, current

from .helpers import collecting, echo


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 1.5}, "sample_rate=1.5: expected a number between 0 and 1"),
        ({"sample_rate": "half"}, "sample_rate='half': expected a number"),
        ({"enabled": "yes"}, "enabled='yes': expected True or False"),
        ({"exporters": "stdout"}, "exporters='stdout': expected a list"),
        (
            {"exporters": ["nope"]},
            "no exporter named 'nope'; available: aws.emf, aws.xray",
        ),
        ({"exporters": [object()]}, "neither an exporter name nor an object with export()"),
        ({"input_max_depth": 2.5}, "input_max_depth=2.5: expected a whole number"),
        ({"timeout_margin_ms": -1}, "timeout_margin_ms=-1: expected a number between 0"),
        ({"service": ""}, "service='': expected a non-empty string"),
        ({"sevice": "x"}, "unknown setting(s) sevice"),
    ],
)
def test_configure_names_the_bad_setting(options: dict[str, Any], message: str) -> None:
    with pytest.raises(obs.ConfigError) as caught:
        obs.configure(**options)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"exporters": []},
            "exporters=[]: expected at least one exporter (to record nothing, set enabled=False)",
        ),
        ({"input_keys": "text"}, "input_keys='text': expected a list of key names"),
        (
            {"input_keys": ["ok", ""]},
            "input_keys: '' is not a key name "
            "(expected a non-empty string of at most 64 characters)",
        ),
        (
            {"input_keys": [3]},
            "input_keys: 3 is not a key name "
            "(expected a non-empty string of at most 64 characters)",
        ),
        (
            {"input_keys": ["k" * 65]},
            f"input_keys: {'k' * 65!r} is not a key name "
            "(expected a non-empty string of at most 64 characters)",
        ),
    ],
)
def test_configure_says_exactly_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises(obs.ConfigError) as caught:
        obs.configure(**options)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("variable", "text", "reason"),
    [
        ("INFEROBS_SAMPLE_RATE", "lots", "expected a number"),
        ("INFEROBS_SAMPLE_RATE", "nan", "expected a number"),
        ("INFEROBS_SAMPLE_RATE", "2", "expected a number between 0 and 1"),
        ("INFEROBS_PROACTIVE_INIT_S", "soon", "expected a number"),
        ("INFEROBS_PROACTIVE_INIT_S", "inf", "expected a finite number"),
        ("INFEROBS_EXPORTERS", "store,store", "'store' is given twice"),
        ("INFEROBS_TIMEOUT_MARGIN_MS", "50ms", "expected a number"),
        ("INFEROBS_INPUT_MAX_DEPTH", "2.5", "expected a whole number"),
        ("INFEROBS_INPUT_MAX_ITEMS", "many", "expected a whole number"),
        ("INFEROBS_INPUT_MAX_ITEMS", "0", "expected a whole number between 1 and 1000000"),
        (
            "INFEROBS_EXPORTERS",
            ",",
            "expected at least one exporter (to record nothing, set enabled=False)",
        ),
        (
            "INFEROBS_EXPORTERS",
            " ",
            "expected at least one exporter (to record nothing, set enabled=False)",
        ),
    ],
)
def test_a_bad_variable_gets_the_documented_message(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, reason: str
) -> None:
    message = f"{variable}={text!r}: {reason}"
    with pytest.raises(obs.ConfigError) as caught:
        Settings.from_env({variable: text})
    assert str(caught.value) == message
    monkeypatch.setenv(variable, text)
    with pytest.raises(obs.ConfigError) as caught:
        obs.configure()
    assert str(caught.value) == message


def test_input_keys_from_code_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env({"INFEROBS_INPUT_KEYS": " user_features, ,scores,user_features"})
    assert settings.input_keys == ("user_features", "scores")
    assert "input_keys=('user_features', 'scores')" in repr(settings)
    assert settings.replace(sample_rate=0.5).input_keys == ("user_features", "scores")
    assert Settings(input_keys=frozenset({"b", "a"})).input_keys == ("a", "b")
    sink = collecting(input_keys=["a", "b"])
    handler = obs.instrument(observing)
    handler({"a": [0.0] * 100_000, "b": [1] * 100_000, "c": 1}, None)
    summary = sink.records[0].input
    assert summary is not None and set(summary["items"]) == {"a", "b"}
    assert summary["items"]["b"] == {
        "kind": "list",
        "n_items": 100_000,
        "shape": [100_000],
        "dtype": "int",
        "sampled": True,
    }
    assert summary["other_keys"] == 1


def observing(event: Any, context: Any) -> None:
    obs.observe_input(event)


def test_an_empty_exporter_list_in_the_environment_falls_back_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFEROBS_EXPORTERS", ",")
    handler = obs.instrument(echo)
    assert handler("fine", None) == "fine" and handler("again", None) == "again"
    captured = capsys.readouterr()
    assert captured.err.count("INFEROBS_EXPORTERS=','") == 1
    assert "expected at least one exporter" in captured.err
    assert captured.out.count('"event":"inferobs.invocation"') == 2


def test_environment_sets_every_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from inferobs.drift.baseline import Baseline

    baseline = str(tmp_path / "baseline.json")
    Baseline.from_frame({"p": [0.0, 1.0, 2.0, 3.0]}, prediction="p", bins=2).save(baseline)
    values = {
        "INFEROBS_ENABLED": "false",
        "INFEROBS_SERVICE": "shop",
        "INFEROBS_EXPORTERS": "stdout, store",
        "INFEROBS_SAMPLE_RATE": "0.1",
        "INFEROBS_STORE_PATH": "/tmp/store",
        "INFEROBS_PROACTIVE_INIT_S": "5",
        "INFEROBS_TIMEOUT_MARGIN_MS": "0",
        "INFEROBS_FLUSH_DEADLINE_MS": "20",
        "INFEROBS_REQUEST_TIMEOUT_S": "300",
        "INFEROBS_INPUT_MAX_DEPTH": "2",
        "INFEROBS_INPUT_MAX_ITEMS": "10",
        "INFEROBS_INPUT_KEYS": "user_id_hash",
        "INFEROBS_BASELINE": baseline,
        "INFEROBS_DRIFT_WINDOW": "1h",
        "INFEROBS_DRIFT_EVERY_INVOCATION": "yes",
    }
    assert set(values) == set(Settings.ENV.values())
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = obs.configure()
    assert (settings.enabled, settings.service, settings.exporters) == (
        False,
        "shop",
        ("stdout", "store"),
    )
    assert (settings.sample_rate, settings.store_path, settings.proactive_init_s) == (
        0.1,
        "/tmp/store",
        5.0,
    )
    assert (settings.timeout_margin_ms, settings.input_max_depth, settings.input_max_items) == (
        0.0,
        2,
        10,
    )
    assert settings.input_keys == ("user_id_hash",)
    assert settings.request_timeout_s == 300.0
    assert settings.flush_deadline_ms == 20.0
    assert (settings.baseline, settings.drift_window, settings.drift_every_invocation) == (
        baseline,
        3600.0,
        True,
    )


def test_bad_environment_without_configure_warns_and_uses_defaults(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFEROBS_SAMPLE_RATE", "2")
    monkeypatch.setenv("INFEROBS_SERVICE", "shop")
    settings = current()
    assert settings.sample_rate == 1.0 and settings.service == "shop"
    assert "INFEROBS_SAMPLE_RATE='2'" in capsys.readouterr().err


def test_unknown_exporter_from_environment_falls_back_to_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFEROBS_EXPORTERS", "cloudwatch-typo")
    handler = obs.instrument(echo)
    assert handler("fine", None) == "fine"
    captured = capsys.readouterr()
    assert "no exporter named 'cloudwatch-typo'" in captured.err
    assert '"event":"inferobs.invocation"' in captured.out


def test_settings_are_immutable() -> None:
    with pytest.raises(AttributeError):
        Settings().sample_rate = 0.5


def test_third_party_exporters_load_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib import metadata

    from .helpers import Collect

    point = metadata.EntryPoint(
        name="collect", value="tests.helpers:Collect", group="inferobs.exporters"
    )
    real = metadata.entry_points

    def entry_points(**params: Any) -> Any:
        if params.get("group") == "inferobs.exporters":
            found = [point]
            if "name" in params:
                found = [p for p in found if p.name == params["name"]]
            return metadata.EntryPoints(found)
        return real(**params)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    settings = obs.configure(exporters=["collect"])
    from inferobs.lifecycle import _exporters

    assert isinstance(_exporters.get(settings)[0], Collect)
