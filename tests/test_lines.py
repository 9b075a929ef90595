"""The JSON line writer: exactly the json module's output, one flushed line per record."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from inferobs.export.lines import LineExporter, encode
from inferobs.record import Invocation

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=12), values, max_size=12))
def test_encode_writes_exactly_what_json_dumps_writes(fields: dict[str, Any]) -> None:
    record = Invocation.__new__(Invocation)  # any dict-shaped record, checked or not
    record.update(fields)
    assert encode(record) == json.dumps(fields, separators=(",", ":"))


def test_a_real_record_round_trips_through_its_line() -> None:
    record = Invocation(
        start=1_795_812_158_769_595_771,
        duration_ms=0.019,
        id='req-\u00e9\n"1"',
        cold_start=True,
        stages={"preprocess": 0.002, "inference/forward": 3.5},
        input={"kind": "ndarray", "shape": [1, 20], "dtype": "float32", "nbytes": 80},
        tags={"tier": "gold", "n": 3},
        memory_mb=1024,
    )
    line = encode(record)
    assert "\n" not in line
    assert Invocation.from_json(line) == record


def test_the_exporter_writes_one_flushed_line_per_record() -> None:
    class Stream(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            Stream.flushes += 1
            super().flush()

    stream = Stream()
    exporter = LineExporter(stream)
    for n in range(3):
        exporter.export(Invocation(start=n, duration_ms=1.0))
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["start"] for line in lines] == [0, 1, 2]
    assert Stream.flushes == 3
