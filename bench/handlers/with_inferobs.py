"""inferobs: three stages, an input summary, one JSON line per invocation."""

from __future__ import annotations

import os
from typing import Any

from work import infer, postprocess, preprocess

import inferobs as obs

if os.environ.get("BENCH_LINE_FILE"):  # the warm benchmark writes lines to a file
    from inferobs.export.lines import LineExporter

    obs.configure(exporters=[LineExporter(open(os.environ["BENCH_LINE_FILE"], "a"))])  # noqa: SIM115


@obs.instrument(model="bench", model_version="1")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with obs.stage("preprocess"):
        x = preprocess(event)
    obs.observe_input(x)
    with obs.stage("inference"):
        y = infer(x)
    with obs.stage("postprocess"):
        return postprocess(y)
