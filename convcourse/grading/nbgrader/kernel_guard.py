"""Runs inside an autograded kernel: undoes what notebook code did to the machinery tests rely on.

The grader calls :func:`install` before the first cell runs and :func:`restore` before every
autograded test cell. ``restore`` puts back the builtins, a few standard-library modules the
checks use, ``sys`` hooks and the IPython shell's execution and error-display machinery as they
were at kernel start, then prints the grader's one-time token, which proves it really ran.

It also frees what a failed cell left behind: after an error, IPython keeps the traceback and with
it the locals of every frame it went through, so a memory bomb that ended in ``MemoryError`` would
keep its memory and make every later cell fail for want of it. A ``post_run_cell`` callback clears
those frames after every failed cell (and ``restore`` makes sure the callback is still registered).

This raises the bar against the usual tricks (``builtins.abs = lambda x: 0``, an AST transformer
that deletes ``assert``/``raise``, ``set_custom_exc`` or a replaced ``showtraceback`` that swallow
errors, trace functions). It is no proof: code running in the same process can always subvert it,
which is why the grader also checks that every test cell runs to its last line, and why the kernel
runs in the sandbox (:mod:`convcourse.grading.sandbox`) that protects the machine and the other students.
"""
from __future__ import annotations

import builtins
import gc
import importlib
import sys
import threading

_MODULES = ("builtins", "math", "random", "operator", "functools", "importlib", "importlib.util", "inspect")
_SHELL_ATTRIBUTES = (
    "run_cell", "run_cell_async", "_run_cell", "run_code", "run_ast_nodes", "transform_cell", "transform_ast",
    "showtraceback", "_showtraceback", "showsyntaxerror", "showindentationerror", "get_exception_only",
    "should_run_async", "ex", "ev",
)
_SYS_HOOKS = ("excepthook", "displayhook", "stdout", "stderr", "breakpointhook")
_snapshot: dict | None = None


def _shell():
    get_ipython = getattr(builtins, "get_ipython", None)
    return get_ipython() if get_ipython else None


def release_failed_frames(result=None) -> None:
    """Drop the locals held by the last error's traceback, so memory a failed cell grabbed is freed."""
    error = getattr(result, "error_in_exec", None) if result is not None else getattr(sys, "last_value", None)
    if error is None:
        return
    seen: set[int] = set()
    while isinstance(error, BaseException) and id(error) not in seen:  # the error and what it chained to
        seen.add(id(error))
        _clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if getattr(sys, name, None) is not None:
            setattr(sys, name, None)
    gc.collect()


def _clear_frames(tb) -> None:
    while tb is not None:
        frame = tb.tb_frame
        try:
            frame.clear()
            frame.f_locals  # noqa: B018 - Python 3.11 keeps a snapshot dict of the locals until it is read again
        except RuntimeError:  # a frame that is still running (the caller's own) keeps its locals
            pass
        tb = tb.tb_next


def _register_release(shell) -> None:
    callbacks = shell.events.callbacks["post_run_cell"]
    if release_failed_frames not in callbacks:
        callbacks.append(release_failed_frames)


def install() -> None:
    """Record the pristine state; call once, before any notebook cell has run."""
    global _snapshot
    shell = _shell()
    modules = {name: dict(vars(importlib.import_module(name))) for name in _MODULES}
    methods = {}
    if shell is not None:
        for cls in type(shell).__mro__:
            for name in _SHELL_ATTRIBUTES:
                if name in vars(cls):
                    methods[(cls, name)] = vars(cls)[name]
    _snapshot = {
        "modules": modules,
        "methods": methods,
        "sys": {name: getattr(sys, name, None) for name in _SYS_HOOKS},
        "ast_transformers": list(shell.ast_transformers) if shell else [],
        "input_transformers_post": list(shell.input_transformers_post) if shell else [],
        "input_transformers_cleanup": list(shell.input_transformers_cleanup) if shell else [],
        "custom_exceptions": tuple(shell.custom_exceptions) if shell else (),
    }
    if shell is not None:
        _register_release(shell)


def _restore_module(name: str, saved: dict) -> None:
    namespace = vars(sys.modules.get(name) or importlib.import_module(name))
    for key, value in saved.items():
        if namespace.get(key, _MISSING) is not value:
            namespace[key] = value


_MISSING = object()


def _restore_shell(shell, snapshot: dict) -> None:
    for (cls, name), value in snapshot["methods"].items():
        if vars(cls).get(name, _MISSING) is not value:
            setattr(cls, name, value)
    for name in _SHELL_ATTRIBUTES:
        vars(shell).pop(name, None)  # instance-level replacements shadow the class's methods
    shell.ast_transformers[:] = snapshot["ast_transformers"]
    shell.input_transformers_post[:] = snapshot["input_transformers_post"]
    shell.input_transformers_cleanup[:] = snapshot["input_transformers_cleanup"]
    shell.custom_exceptions = snapshot["custom_exceptions"]
    for callbacks in shell.events.callbacks.values():
        # Callbacks defined in the notebook itself run around every cell, tests included.
        callbacks[:] = [cb for cb in callbacks if getattr(cb, "__module__", None) != "__main__"]


def restore(token: str) -> None:
    """Put the recorded state back, then print ``token`` so the grader knows this really ran."""
    snapshot = _snapshot
    if snapshot is None:
        raise RuntimeError("convcourse.kernel_guard.install() was never called in this kernel")
    for name, saved in snapshot["modules"].items():
        _restore_module(name, saved)
    for name, value in snapshot["sys"].items():
        if value is not None:
            setattr(sys, name, value)
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)
    threading.setprofile(None)
    shell = _shell()
    if shell is not None:
        _restore_shell(shell, snapshot)
        _register_release(shell)
    release_failed_frames()
    sys.stdout.write(f"{token}\n")
    sys.stdout.flush()
