"""What a graded kernel's interpreter imports and runs on, asked of that interpreter in a kernel's environment.

The grader and its kernels need not import the same ``convcourse``: a kernel gets an environment of its
own (:mod:`convcourse.grading.nbgrader.kernel_env`) and starts in a scratch folder, so its ``PYTHONPATH``
and its venv's editable install decide where it imports from, never the grader's ``sys.path`` (pytest run
in one clone with the venv of another imports the first; its kernels, the second). What a sandbox must show
a kernel, and which course checkout it must hide from it, is therefore asked of the kernels' own interpreter:
once per process and environment, so that a round's jobs, forked after the question, inherit the answer.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from convcourse.grading.course.folder import CONFIG_FILE, Course, GradingError
from convcourse.grading.nbgrader.kernel_env import allowed, kernel_environment
from convcourse.grading.sandbox.paths import inside
from convcourse.mnist_files import DATA_ENV

KERNEL_NAME = "python3"  # the kernelspec every notebook of the course names
# Run by the kernels' interpreter, in a kernel's environment, in an empty folder.
_QUESTION = """
import json, os, sys
from importlib.util import find_spec
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]  # -c's start folder: a kernel's is its own scratch copy
spec = find_spec("convcourse")
package = os.path.dirname(spec.origin) if spec is not None and spec.origin else ""
paths = []
if package:
    from convcourse.grading.sandbox.paths import interpreter_paths
    paths = interpreter_paths()
print(json.dumps({"package": package, "interpreter": [sys.executable, sys.prefix, sys.base_prefix], "paths": paths}))
"""


class KernelPythonError(RuntimeError):
    """The kernels' interpreter could not say what it imports (it could not run a kernel either)."""


@dataclass(frozen=True)
class KernelPython:
    """The answer of the kernels' interpreter, in a kernel's environment."""

    python: str
    package: str  # the folder it imports convcourse from ('' when it cannot import it)
    needs: tuple[str, ...]  # what a kernel of it cannot do without: the package, the interpreter, what it imports from, the data
    paths: tuple[str, ...]  # what a sandbox must show a kernel of it (:func:`convcourse.grading.sandbox.paths.interpreter_paths`)


def kernel_interpreter(kernel_name: str = KERNEL_NAME) -> str:
    """The interpreter of the kernelspec ``kernel_name``, with ``python`` meaning this one (as jupyter_client reads it)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except NoSuchKernel:
        return sys.executable
    if not argv or argv[0] in ("python", f"python{sys.version_info[0]}", "python%i.%i" % sys.version_info[:2]):
        return sys.executable
    return argv[0]


def ask(environ: Mapping[str, str] | None = None, python: str | None = None) -> KernelPython:
    """What ``python`` (default: the kernelspec's) imports in the environment a kernel gets from ``environ`` (default:
    this process's); asked once per interpreter and environment."""
    grader = os.environ if environ is None else environ
    return _ask(python or kernel_interpreter(), tuple(sorted((k, v) for k, v in grader.items() if allowed(k))))


@lru_cache(maxsize=8)
def _ask(python: str, environ: tuple[tuple[str, str], ...]) -> KernelPython:
    with tempfile.TemporaryDirectory(prefix="convcourse-kernel-python-") as run:
        env = kernel_environment(dict(environ), Path(run))
        try:
            done = subprocess.run([python, "-c", _QUESTION], env=env, cwd=run, capture_output=True, text=True,
                                  timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise KernelPythonError(f"cannot run the kernels' interpreter {python}: {error}") from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise KernelPythonError(f"the kernels' interpreter {python} could not say what it imports "
                                f"(exit {done.returncode}): {done.stderr.strip()[-1500:]}") from None
    needs = dict.fromkeys([answer["package"], *answer["interpreter"], *answer["paths"], env[DATA_ENV]])
    return KernelPython(python, answer["package"], tuple(p for p in needs if p), tuple(answer["paths"]))


def checkout_private_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """What no kernel may see of the course checkouts it could reach: the one the kernels' interpreter imports
    ``convcourse`` from (asked of it, in the kernels' environment made from ``environ``: :func:`ask`)
    and the one this process imports it from, where either is an editable install of a course checkout.

    Everything of such a checkout but its ``convcourse`` and what a kernel runs on (a venv inside it, the data):
    a course copied elsewhere still has its solutions in its checkout, in ``source/``, ``authoring/`` and git's history.
    """
    import convcourse

    try:
        kernel = ask(environ)
    except KernelPythonError as error:
        raise GradingError(f"{error}; no kernel can start with it") from None
    needs = [os.path.realpath(path) for path in kernel.needs]
    hidden: list[Path] = []
    for package in dict.fromkeys(filter(None, (kernel.package, os.path.dirname(convcourse.__file__)))):
        for checkout in dict.fromkeys((Path(os.path.abspath(package)).parent, Path(package).resolve().parent)):
            if (checkout / CONFIG_FILE).is_file():
                hidden += [entry for entry in sorted(checkout.iterdir()) if not entry.is_symlink()
                           and not any(inside(need, [str(entry.resolve())]) for need in needs)]
    return hidden


def hidden(course: Course, *scratch: Path) -> list[str]:
    """What no kernel of ``course`` may see (:meth:`Course.hidden`), with the checkouts its kernels' interpreter could
    reach, asked here, in the kernels' environment: on a Dask worker, there."""
    return course.hidden(*scratch, checkouts=checkout_private_paths({**os.environ, **course.kernel_settings}))
