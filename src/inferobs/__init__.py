"""inferobs: observability and cost answers for ML inference on serverless platforms.

    import inferobs as obs

    @obs.instrument(model="sentiment", model_version="2026-11-01")
    def handler(event, context):
        with obs.stage("inference"):
            ...

Importing this package loads the standard library and inferobs's own small
modules only; everything heavier is imported where it is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ConfigError, Settings, configure
from .context import observe_features, observe_input, observe_prediction, set_model, tag
from .instrument import instrument
from .record import Invocation, RecordError
from .runtime import Clock, Runtime, default_runtime
from .stages import stage

TYPE_CHECKING = False
if TYPE_CHECKING:  # for type checkers; at run time they load on first use (`__getattr__`)
    from .instrument.asgi import InferobsMiddleware, instrument_asgi
    from .instrument.sagemaker import instrument_sagemaker
    from .instrument.wsgi import InferobsWSGIMiddleware, instrument_wsgi

__all__ = [
    "Clock",
    "ConfigError",
    "InferobsMiddleware",
    "InferobsWSGIMiddleware",
    "Invocation",
    "RecordError",
    "Runtime",
    "Settings",
    "__version__",
    "configure",
    "init_complete",
    "instrument",
    "instrument_asgi",
    "instrument_sagemaker",
    "instrument_wsgi",
    "observe_features",
    "observe_input",
    "observe_prediction",
    "set_model",
    "stage",
    "tag",
]


def init_complete(runtime: Runtime | None = None) -> None:
    """Say that module initialisation ends here.

    Init is taken to end when the handler is instrumented; call this at the end
    of a module that keeps loading (a model, a client) after the decorated
    handler is defined, so that work counts as init rather than idle time.
    """
    (runtime or default_runtime()).mark_init_end()


# The HTTP surfaces load on first use: a Lambda handler's cold start never pays for them.
_LAZY = {
    "InferobsMiddleware": "asgi",
    "instrument_asgi": "asgi",
    "InferobsWSGIMiddleware": "wsgi",
    "instrument_wsgi": "wsgi",
    "instrument_sagemaker": "sagemaker",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inferobs' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".instrument.{module}", __name__), name)
