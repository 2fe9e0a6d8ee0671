"""The environment of a graded kernel: built from an allow-list, never inherited whole from the grader.

Whatever the kernel's environment holds, a submission can print into its own feedback. The
grader's environment is the instructor's session: on a JupyterHub it holds
``JUPYTERHUB_API_TOKEN`` (the key to the instructor's server), and often cloud credentials, SSH
agent sockets and the instructor's home. So a kernel gets only what Python, the course and the
data need: the locale, thread counts, ``PYTHONPATH`` (so it imports the same ``convcourse`` as
the grader), the course's own variables, and its own scratch ``HOME``, ``TMPDIR`` and caches.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

from convcourse.grading import settings
from convcourse.mnist_files import DATA_ENV, resolve_root

# Passed on from the grader's environment when set there; nothing else is. The course's own settings
# are those :mod:`convcourse.grading.settings` marks as a kernel's to see.
ALLOWED = (
    "LANG", "LANGUAGE", "TZ", "PYTHONPATH",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    *settings.KERNEL_VISIBLE,
)
ALLOWED_PREFIXES = ("LC_",)
# Set for every kernel, whatever the grader's environment says.
SET_FOR_KERNEL = frozenset({"PATH", "USER", "LOGNAME", "HOME", "TMPDIR", "MPLCONFIGDIR", "IPYTHONDIR",
                            "JUPYTER_RUNTIME_DIR", "XDG_CACHE_HOME", "PYTHONDONTWRITEBYTECODE"})
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def allowed(name: str) -> bool:
    """Whether the grader's variable ``name`` may reach a graded kernel."""
    return name in ALLOWED or name.startswith(ALLOWED_PREFIXES)


def kernel_environment(grader: Mapping[str, str], run_dir: Path, extra: Mapping[str, str] = ()) -> dict[str, str]:
    """The whole environment of a kernel working in ``run_dir``: allowed variables, ``extra``, its own home."""
    env = {name: value for name, value in grader.items() if allowed(name)}
    env.update(extra)
    # Absolute: the kernel works in a scratch folder; and not under its HOME, which is a scratch folder too.
    env[DATA_ENV] = os.path.abspath(resolve_root(None, env))
    home = Path(run_dir) / "home"
    env.update(
        PATH=os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), *SYSTEM_PATH])),
        USER="student", LOGNAME="student",  # as root its uid has no passwd entry; getpass.getuser() reads these
        HOME=str(home), TMPDIR="/tmp", MPLCONFIGDIR=str(home / ".matplotlib"), IPYTHONDIR=str(home / ".ipython"),
        JUPYTER_RUNTIME_DIR=str(Path(run_dir) / "runtime"), XDG_CACHE_HOME=str(home / ".cache"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env
