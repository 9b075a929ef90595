"""The SageMaker inference toolkit's handler functions, recorded from the user's module.

The toolkit (sagemaker-inference, behind the framework containers) imports the
user's ``inference.py`` and looks up ``model_fn``, ``input_fn``,
``predict_fn``, ``output_fn`` (or one ``transform_fn``) on it by name. One line
at the end of that module, ``obs.instrument_sagemaker(globals())``, replaces
the ones it defines with recorded ones:

- ``model_fn`` is the environment's init: the first request's record carries it;
- a request's record opens at the first of ``input_fn``, ``predict_fn``,
  ``output_fn`` the module defines and closes at the last, each recorded as the
  stage ``preprocess``, ``inference``, ``postprocess``; an exception in any of
  them closes it as an error;
- ``transform_fn`` is one record, with whatever stages it opens itself.

The toolkit counts a function's parameters to decide whether to pass it the
request's context, so each replacement keeps its function's signature.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar

from ..context import _scope
from ..lifecycle import Recorder, leave
from ..runtime import Runtime, default_runtime
from ..stages import stage
from .labels import check_labels
from .model_servers import ends_init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping
    from contextvars import Token
    from typing import Any

    from ..context import Call, Frame

__all__ = ["STAGES", "instrument_sagemaker"]

STAGES = {"input_fn": "preprocess", "predict_fn": "inference", "output_fn": "postprocess"}

# the request under way in this thread: opened by its first function, closed by its last
_open: ContextVar[tuple[Call, Token[Frame | None]] | None] = ContextVar(
    "inferobs_sagemaker_request", default=None
)


def instrument_sagemaker(
    namespace: MutableMapping[str, Any],
    *,
    model: str | None = None,
    model_version: str | None = None,
    variant: str | None = None,
    runtime: Runtime | None = None,
) -> None:
    """Record the toolkit's handler functions ``namespace`` (the module's ``globals()``)
    defines, in place. ``ValueError`` when it defines none of them."""
    check_labels("instrument_sagemaker", model, model_version, variant)
    chosen = runtime or default_runtime()
    recorder = Recorder(chosen, model=model, model_version=model_version, variant=variant)
    defined = [name for name in STAGES if callable(namespace.get(name))]
    transform = namespace.get("transform_fn")
    if not defined and not callable(transform):
        raise ValueError(
            "instrument_sagemaker(): the module defines none of input_fn, predict_fn, "
            "output_fn or transform_fn"
        )
    if callable(namespace.get("model_fn")):
        namespace["model_fn"] = ends_init(namespace["model_fn"], chosen)
    if callable(transform):
        namespace["transform_fn"] = _step(transform, recorder, None, opens=True, closes=True)
    for name in defined:
        opens, closes = name == defined[0], name == defined[-1]
        namespace[name] = _step(namespace[name], recorder, STAGES[name], opens, closes)


def _step(
    func: Callable[..., Any], recorder: Recorder, name: str | None, opens: bool, closes: bool
) -> Callable[..., Any]:
    """One of a request's functions: opening its record first, closing it last or on an
    error, and timed as stage ``name``."""

    @functools.wraps(func)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        if opens:
            _close(recorder, None)  # a request left open by a failure outside our functions
            call = recorder.open(None, None, None)
            if call is not None:
                _open.set((call, _scope.set(call.root())))
        try:
            if name is None or _open.get() is None:
                result = func(*args, **kwargs)
            else:
                with stage(name):
                    result = func(*args, **kwargs)
        except BaseException as exc:
            _close(recorder, exc)
            raise
        if closes:
            _close(recorder, None)
        return result

    return recorded


def _close(recorder: Recorder, error: BaseException | None) -> None:
    held = _open.get()
    if held is None:
        return
    _open.set(None)
    call, token = held
    leave(token)
    recorder.close(call, error)
