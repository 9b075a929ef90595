"""The columnar reader and the record-by-record one give the same `obs report` figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferobs.analyze.figures import figures
from inferobs.analyze.frames import read_frames
from inferobs.analyze.summary import summarize_records
from inferobs.export.lines import encode
from inferobs.export.store import StoreExporter
from inferobs.read import read
from inferobs.record import Invocation

durations = st.floats(min_value=0.001, max_value=60_000, allow_nan=False).map(lambda x: round(x, 3))
stage_names = st.sampled_from(["preprocess", "inference", "inference/forward", "postprocess"])


@st.composite
def invocations(draw: Any, n: int) -> Invocation:
    kind = draw(st.sampled_from(["invocation", "invocation", "warmup", "timeout"]))
    fields: dict[str, Any] = {
        "id": draw(st.one_of(st.none(), st.uuids().map(str))),
        "start": draw(st.integers(min_value=1, max_value=2**62)),
        "duration_ms": draw(durations),
        "kind": kind,
        "status": "error" if kind == "timeout" else draw(st.sampled_from(["ok", "error"])),
        "function": draw(st.sampled_from([None, "f", "g"])),
        "service": draw(st.sampled_from([None, "svc"])),
        "model": draw(st.sampled_from([None, "m1", "m2"])),
        "model_version": draw(st.sampled_from([None, "1", "2"])),
        "variant": draw(st.sampled_from([None, "A", "B"])),
        "cold_start": draw(st.booleans()) or None,
        "init_ms": draw(st.one_of(st.none(), durations)),
        "sample_rate": draw(st.sampled_from([None, 0.5, 0.1])),
    }
    if draw(st.booleans()):
        fields["stages"] = draw(st.dictionaries(stage_names, durations, max_size=4))
    return Invocation(**{k: v for k, v in fields.items() if v is not None})


def same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (a, b)
        for key in a:
            same(a[key], b[key])
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (a, b)
    else:
        assert a == b, (a, b)


def both_ways(sources: list[str]) -> None:
    by_record = [g.as_dict() for g in summarize_records(read(sources).records)]
    columnar = [g.as_dict() for g in figures(read_frames(sources))]
    assert len(by_record) == len(columnar)
    for left, right in zip(by_record, columnar, strict=True):
        same(left, right)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(invocations(0), min_size=1, max_size=40), data=st.data())
def test_lines_with_prefixes_repeats_and_noise_give_the_same_figures(
    tmp_path: Path, records: list[Invocation], data: Any
) -> None:
    path = tmp_path / "export.log"
    with path.open("w") as out:
        for record in records:
            line = encode(record)
            shape = data.draw(st.sampled_from(["plain", "prefixed", "twice", "noise"]))
            if shape == "prefixed":  # as a CloudWatch export writes it
                out.write(f"2026-11-27T10:00:00.000Z {line}\n")
            elif shape == "twice":  # two records on one line: the record-by-record path
                out.write(f"{line} {line}\n")
            elif shape == "noise":
                out.write(f'START RequestId: x\n{{"level": "info", "msg": "hi"}}\n{line}\n')
            else:
                out.write(line + "\n")
    both_ways([str(path)])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(invocations(0), min_size=1, max_size=30))
def test_a_store_and_a_saved_log_of_it_count_each_record_once(
    tmp_path: Path, records: list[Invocation]
) -> None:
    folder = tmp_path / "store"
    store = StoreExporter(str(folder))
    for record in records:
        store.export(record)
    assert store.flush()
    log = tmp_path / "saved.jsonl"
    log.write_text("".join(encode(r) + "\n" for r in records))
    both_ways([str(folder), str(log)])


def test_problems_are_the_same_with_file_and_line(tmp_path: Path) -> None:
    good = encode(Invocation(start=5, duration_ms=1.0, function="f"))
    path = tmp_path / "mixed.log"
    path.write_text(
        "\n".join(
            [
                good,
                '{"schema":1,"event":"inferobs.invocation","start":1,"duration_ms":NaN}',
                '{"schema":9,"event":"inferobs.invocation","start":1,"duration_ms":1}',
                '{"schema":1,"event":"inferobs.invocation","start":"x","duration_ms":1}',
                '{"schema":1,"event":"inferobs.invocation","start":1,"duration_ms":1,'
                '"stages":{"a":true}}',
                "inferobs.invocation mentioned, no record",
                good.replace('"start":5', '"start":6'),
            ]
        )
        + "\n"
    )
    expected = [str(p) for p in read([str(path)]).problems]
    frames = read_frames([str(path)])
    assert [str(p) for p in frames.problems] == expected
    assert len(expected) == 5 and frames.count() == 2


ODD_FIELDS = [  # each a record the reader refuses, for a reason of its type or size
    '"memory_mb":1.0',
    '"cold_start":1',
    '"function":12',
    '"input":5',
    '"trace_id":7',
    '"stages":{"a":1,"b":"x"}',
    '"schema":0',
    '"kind":"other"',
    '"sample_rate":"1"',
    '"init_ms":true',
    '"tags":[1]',
    '"duration_ms":1e400',
    '"unstaged_ms":1e400',
    '"stages":{"a":1e400}',
    '"max_rss_mb":-1e999',
    '"stage_starts":{"a":"x"}',
    '"stages":{"a":NaN}',
    '"tags":{"a":Infinity}',
]


@pytest.mark.parametrize("compressed", [False, True])
def test_problems_after_blank_lines_name_their_line_and_odd_types_are_refused_alike(
    tmp_path: Path, compressed: bool
) -> None:
    import gzip

    lines = [encode(Invocation(start=5, duration_ms=1.0, function="f")), ""]
    for odd in ODD_FIELDS:
        given = {"schema": "1", "start": "1", "duration_ms": "1"}
        fields = [f'"{k}":{v}' for k, v in given.items() if f'"{k}":' not in odd]
        lines += ['{"event":"inferobs.invocation",' + ",".join([*fields, odd]) + "}", "\r", ""]
    lines.append(encode(Invocation(start=6, duration_ms=1.0, function="f")))
    text = "\n".join(lines) + "\n"
    plain = tmp_path / "odd.log"
    plain.write_bytes(text.encode())
    path = plain
    if compressed:
        path = tmp_path / "odd.log.gz"
        path.write_bytes(gzip.compress(text.encode()))
    expected = [str(p).replace(str(plain), str(path)) for p in read([str(plain)]).problems]
    frames = read_frames([str(path)])
    assert [str(p) for p in frames.problems] == expected
    assert len(expected) == len(ODD_FIELDS) and frames.count() == 2
    assert expected[-1].startswith(f"{path}:{len(lines) - 3}:")  # blank lines counted


def test_record_shapes_first_met_deep_in_a_file_are_read_like_the_first_ones(
    tmp_path: Path,
) -> None:
    # the bulk reader learns its records' field types from a file's first lines;
    # shapes met only later (a new field, a value written another way) are checked
    # in full, and a wrong type there is still refused
    first = [
        encode(Invocation(start=n + 1, duration_ms=1.5, function="f", id=f"r{n}"))
        for n in range(10_050)
    ]
    later = [
        encode(
            Invocation(
                start=20_000 + n,
                duration_ms=2,
                function="f",
                variant="B",
                status="error",
                error_type="ValueError",
                stages={"inference": 1.25},
            )
        )
        for n in range(30)
    ]
    wrong = '{"schema":1,"event":"inferobs.invocation","start":9,"duration_ms":1,"variant":3}'
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join([*first, *later, wrong, "😀"]) + "\n")
    both_ways([str(path)])
    frames = read_frames([str(path)])
    assert frames.count() == 10_080
    assert [str(p) for p in frames.problems] == [f"{path}:10081: variant=3: expected a string"]


def test_escaped_characters_are_read_in_bulk_as_the_reader_reads_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "emoji.jsonl"
    path.write_text(
        '{"schema":1,"event":"inferobs.invocation","start":1,"duration_ms":1,'
        '"function":"f\\ud83d\\ude00"}\n'
        # a lone surrogate is no character: the record is read, its text kept escaped
        '{"schema":1,"event":"inferobs.invocation","start":2,"duration_ms":1,'
        '"function":"g\\ud800"}\n'
    )
    frames = read_frames([str(path)])
    assert frames.invocations.order("start").project("function").fetchall() == [
        ("f😀",),
        ("g\\ud800",),
    ]
    assert [r.function for r in read([str(path)]).records] == ["f😀", "g\ud800"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_utf16_and_bom_files_read_alike(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "ps.log"
    lines = [encode(Invocation(start=n, duration_ms=float(n), function="f")) for n in (1, 2)]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    both_ways([str(path)])


def test_a_gzip_export_reads_like_the_plain_file(tmp_path: Path) -> None:
    import gzip

    lines = "".join(
        f"2026-11-27T10:00:0{n}.000Z {encode(Invocation(start=n, duration_ms=n, function='f'))}\n"
        for n in range(1, 6)
    )
    plain = tmp_path / "export.log"
    plain.write_text(lines)
    packed = tmp_path / "000000.gz"  # as a CloudWatch export task names its objects
    packed.write_bytes(gzip.compress(lines.encode()))
    assert [g.as_dict() for g in figures(read_frames([str(packed)]))] == [
        g.as_dict() for g in figures(read_frames([str(plain)]))
    ]
    assert read_frames([str(packed)]).count() == 5


def test_a_cloudwatch_export_joins_reports_and_counts_the_invocations_that_left_no_record(
    tmp_path: Path,
) -> None:
    import json as _json

    from click.testing import CliRunner

    from inferobs.cli import main

    def ours(n: int, **fields: Any) -> str:
        record = Invocation(
            id=f"req-{n}", start=n * 10**9, duration_ms=10.0, function="fn", **fields
        )
        return f"2026-11-27T10:00:0{n}.000Z {encode(record)}"

    lines = [
        "2026-11-27T10:00:01.000Z START RequestId: req-1 Version: $LATEST",
        ours(1, cold_start=True, init_ms=200.0, init_type="on-demand"),
        "2026-11-27T10:00:01.050Z REPORT RequestId: req-1\tDuration: 10.00 ms\t"
        "Billed Duration: 211 ms\tMemory Size: 1024 MB\tMax Memory Used: 80 MB\t"
        "Init Duration: 200.40 ms",
        ours(2),
        "2026-11-27T10:00:02.050Z REPORT RequestId: req-2\tDuration: 10.00 ms\t"
        "Billed Duration: 10 ms\tMemory Size: 1024 MB\tMax Memory Used: 81 MB",
        # killed for memory: a REPORT and no record of ours
        "2026-11-27T10:00:03.900Z REPORT RequestId: req-3\tDuration: 850.00 ms\t"
        "Billed Duration: 850 ms\tMemory Size: 1024 MB\tMax Memory Used: 1024 MB\t"
        "Status: error\tError Type: Runtime.OutOfMemory",
        "2026-11-27T10:00:04.000Z REPORT RequestId: req-4\tDurat",  # the export was cut here
    ]
    path = tmp_path / "export.log"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["report", "--format", "json", "--source", str(path)])
    assert result.exit_code == 0, result.output
    (group,) = _json.loads(result.stdout)["operations"]
    assert (group["function"], group["invocations"], group["errors"]) == ("fn", 3, 1)
    assert group["cold_starts"] == 1
    assert f"{path}:7" in result.stderr  # the cut line, by file and line


def test_values_no_column_holds_are_problems_and_the_rest_is_reported(tmp_path: Path) -> None:
    good = encode(Invocation(start=5, duration_ms=1.0, function="f"))
    path = tmp_path / "odd.log"
    path.write_text(
        "\n".join(
            [
                good.replace('"function":"f"', '"function":"f","memory_mb":1099511627776'),
                good.replace('"start":5', f'"start":{2**64 + 5}'),
                good,
            ]
        )
        + "\n"
    )
    frames = read_frames([str(path)])
    assert frames.count() == 1
    assert [str(p) for p in frames.problems] == [
        f"{path}:1: memory_mb=1099511627776: not a memory size",
        f"{path}:2: start={2**64 + 5}: beyond a 64-bit count of nanoseconds",
    ]


def test_an_empty_function_name_falls_back_to_the_service_as_the_reader_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "svc.log"
    path.write_text(encode(Invocation(start=1, duration_ms=1.0, function="", service="svc")) + "\n")
    both_ways([str(path)])
    assert read_frames([str(path)], function="svc").count() == 1


def test_a_line_longer_than_the_bulk_reader_takes_is_read_all_the_same(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    record = encode(Invocation(start=1, duration_ms=1.0, function="f"))
    path.write_text("x" * 3_000_000 + "\n" + record + "\n")
    frames = read_frames([str(path)])
    assert frames.count() == 1 and frames.problems == []


def test_a_gzip_export_cut_short_is_a_problem_named_and_the_other_sources_are_read(
    tmp_path: Path,
) -> None:
    import gzip

    whole = gzip.compress(
        (encode(Invocation(start=1, duration_ms=1.0, function="f")) + "\n").encode()
    )
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    good = tmp_path / "good.log"
    good.write_text(encode(Invocation(start=2, duration_ms=1.0, function="f")) + "\n")
    frames = read_frames([str(cut), str(good)])
    assert frames.count() == 1
    assert [str(p) for p in frames.problems] == [
        f"{cut}: Compressed file ended before the end-of-stream marker was reached"
    ]
