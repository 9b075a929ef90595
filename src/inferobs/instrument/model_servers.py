"""``@instrument`` on the handler classes model servers load, instead of a function.

- **Hugging Face Inference Endpoints** custom handler: ``EndpointHandler``,
  whose ``__init__(self, path)`` loads the model and ``__call__(self, data)``
  serves a request.
- **Replicate cog** predictor: a ``BasePredictor`` whose ``setup()`` loads the
  model and ``predict(...)`` serves a request (a generator when it streams).

The loading method is the environment's init: the record of the first request
after it carries it (``init_ms``, ``cold_start``) as on Lambda. The serving
method is recorded as a handler is, each call one record; an ``async def`` or
a generator ``predict`` is recorded to its end.
"""

from __future__ import annotations

import functools

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from ..runtime import Runtime

    C = TypeVar("C", bound=type)

__all__ = ["ends_init", "instrument_class"]


def instrument_class(
    cls: C,
    decorate: Callable[[Callable[..., Any]], Callable[..., Any]],
    runtime: Runtime,
) -> C:
    """``cls`` with its serving method recorded (by ``decorate``, `instrument`'s own) and
    the end of its loading method taken as the end of init.

    ``TypeError`` when it has neither shape: a class with a ``predict`` method (cog)
    or with its own ``__call__`` (Hugging Face).
    """
    if callable(getattr(cls, "predict", None)):
        serving, loading = "predict", "setup" if callable(getattr(cls, "setup", None)) else None
    elif "__call__" in vars(cls) or any("__call__" in vars(base) for base in cls.__mro__[1:-1]):
        serving, loading = "__call__", "__init__"
    else:
        raise TypeError(
            f"instrument() takes a handler function, or a model server's handler class "
            f"(with predict(), or __call__()); {cls.__name__} has neither"
        )
    setattr(cls, serving, decorate(getattr(cls, serving)))
    if loading is not None:
        setattr(cls, loading, ends_init(getattr(cls, loading), runtime))
    return cls


def ends_init(method: Callable[..., Any], runtime: Runtime) -> Callable[..., Any]:
    """``method`` (the model's loading), the environment's init taken to end when it does."""

    @functools.wraps(method)
    def loading(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        finally:
            runtime.mark_init_end()

    return loading
