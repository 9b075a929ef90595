"""Where a record's stages sit in time: the one rule X-Ray, OTLP and Azure spans are drawn by."""

from __future__ import annotations

from inferobs.export.timeline import layout

MS = 1_000_000


def test_stages_sit_at_their_first_entry_nested_and_inside_their_parent() -> None:
    record = {
        "start": 1000 * MS,
        "duration_ms": 20.0,
        "model": "resnet",
        "stages": {"pre": 2.0, "infer": 10.0, "infer/forward": 15.0, "post": 1.0},
        "stage_starts": {"pre": 0.5, "infer": 3.0, "infer/forward": 4.0, "post": 14.0},
    }
    nodes = layout(record)
    assert [(n[0], n[1], n[5]) for n in nodes] == [
        ("resnet", -1, ""),
        ("pre", 0, "pre"),
        ("infer", 0, "infer"),
        ("forward", 2, "infer/forward"),
        ("post", 0, "post"),
    ]
    starts = [(n[2] - 1000 * MS) / MS for n in nodes]
    ends = [(n[3] - 1000 * MS) / MS for n in nodes]
    assert starts == [0.0, 0.5, 3.0, 4.0, 14.0]
    assert ends == [20.0, 2.5, 13.0, 13.0, 15.0]  # forward is cut at its parent's end
    assert not any(n[4] for n in nodes)


def test_without_starts_stages_follow_each_other_and_an_open_one_reaches_the_end() -> None:
    record = {
        "start": 0,
        "duration_ms": 10.0,
        "function": "scorer",
        "kind": "timeout",
        "status": "error",
        "error_stage": "infer/forward",
        "stages": {"pre": 2.0, "infer": 3.0, "orphan/child": 1.0},
        "stage_starts": {"pre": 0.0, "infer": 4.0, "infer/forward": 5.0},
    }
    nodes = {n[5]: n for n in layout(record)}
    assert nodes[""][0] == "scorer" and nodes[""][4]  # a timeout fails the invocation
    assert nodes["infer/forward"][2:4] == (5 * MS, 7 * MS)  # still running: to its parent's end
    assert nodes["infer/forward"][4] and nodes["infer"][4]  # the stage it hit, and around it
    assert not nodes["pre"][4]
    assert nodes["orphan/child"][1] == 0  # its parent was not recorded: under the invocation
    assert nodes["orphan/child"][2] == 7 * MS  # no start: after its previous sibling


def test_a_platforms_trace_id_is_kept_and_a_missing_one_made_up() -> None:
    from inferobs.export.timeline import span_ids, trace_id

    x_ray = trace_id({"trace_id": "1-5759e988-bd862e3fe1be46a994272793"})
    assert x_ray == int("5759e988bd862e3fe1be46a994272793", 16)
    w3c = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id({"trace_id": w3c}) == int(w3c, 16)
    made = {trace_id({}), trace_id({"trace_id": "not-a-trace"}), trace_id({"trace_id": "0" * 32})}
    assert len(made) == 3 and all(0 < t < 2**128 for t in made)
    ids = span_ids(5)
    assert len(set(ids)) == 5 and all(0 < i < 2**64 for i in ids)
