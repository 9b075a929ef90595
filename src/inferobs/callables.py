"""What kind of callable a handler or a stage wraps, told apart without importing inspect.

A wrapper has to match what it wraps: a coroutine function must stay awaitable
and be recorded when it finishes, a generator must be timed while it runs, not
when it is created. Users hand over more than plain functions (a partial, a
bound method, an object with ``async def __call__``), so the callable is
unwrapped to the code that will run before its flags are read. inspect would
do this too, but costs milliseconds of cold start to import.
"""

from __future__ import annotations

import sys
from functools import partial

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["sync", "coroutine", "generator", "async_generator"]

__all__ = ["kind_of", "takes_self"]

_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200
_FUNCTION = type(lambda: None)
_MAX_UNWRAP = 32  # partials of partials of callable objects...: a bound, not a loop


def kind_of(func: object) -> Kind:
    """How calling ``func`` behaves: returns a value, a coroutine, or a (async) generator."""
    target = func
    for _ in range(_MAX_UNWRAP):
        if isinstance(target, partial):
            target = target.func
            continue
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
            continue
        # inspect.markcoroutinefunction's mark, for sync callables that return coroutines;
        # compared by identity, as inspect does (a mock answers every attribute)
        mark = getattr(sys.modules.get("inspect"), "_is_coroutine_mark", None)
        if mark is not None and getattr(target, "_is_coroutine_marker", None) is mark:
            return "coroutine"
        code = getattr(target, "__code__", None)  # functions, and bound methods through __func__
        if code is not None:
            flags = getattr(code, "co_flags", 0)
            if flags & _CO_COROUTINE:
                return "coroutine"
            if flags & _CO_ASYNC_GENERATOR:
                return "async_generator"
            if flags & _CO_GENERATOR:
                return "generator"
            return "sync"
        if not callable(target):
            return "sync"
        call = type(target).__call__  # a callable object: what calling it runs
        if call is target:
            return "sync"
        target = call
    return "sync"


def takes_self(func: object) -> bool:
    """Whether ``func`` is a function written in a class body with ``self`` or ``cls`` first.

    Decorating inside a class body sees the plain function; once the class is
    built, calls reach the wrapper with the instance (or class) in front of the
    handler's own arguments, through an instance or explicitly through the class.
    """
    if func.__class__ is not _FUNCTION:
        return False
    owner = getattr(func, "__qualname__", "").rpartition(".")[0]
    if not owner or owner.endswith("<locals>"):
        return False
    target = func  # under a functools.wraps decorator (torch.no_grad()), the function it wraps
    for _ in range(_MAX_UNWRAP):
        inner = getattr(target, "__wrapped__", None)
        if inner is None:
            break
        target = inner
    code = getattr(target, "__code__", None)
    return code is not None and code.co_argcount > 0 and code.co_varnames[0] in ("self", "cls")
