"""Handler surfaces: each module translates one platform's handler into a `Recorder`."""

from .aws_lambda import instrument

__all__ = ["instrument"]
