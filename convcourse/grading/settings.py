"""Every ``CONVCOURSE_*`` setting of the grading side in one table: its default, what it means, where it goes.

From this table come ``nbgrader_config.py``'s limits (through
:func:`convcourse.grading.nbgrader.preprocessors.configure_autograde`), the settings a grade round
carries to its jobs and to Dask workers (``forwarded``), the settings a graded kernel may see
(``kernel``, :mod:`convcourse.grading.nbgrader.kernel_env`), the sandbox's default limits and the
limits table of the documentation (:func:`markdown_table`). A setting is read from the environment
of the instructor's command, once per round. Torch-free and standard library only: the sandbox
launcher imports it for every kernel.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from convcourse.budget import BUDGET_ENV, GRADING_STEPS, BudgetError, step_budget
from convcourse.mnist_files import DATA_ENV, DATASET_ENV


class SettingError(ValueError):
    """A setting is set to something it cannot be (the message names it and what it takes)."""


@dataclass(frozen=True)
class Setting:
    """One ``CONVCOURSE_*`` environment variable of the grading side."""

    name: str
    default: int | None  # None: unset unless the instructor sets it (what that means is in ``shown``)
    meaning: str
    forwarded: bool  # a round carries the grader's value to its jobs, also on Dask workers
    kernel: bool  # a graded kernel may see it (the kernel environment's allow-list)
    shown: str = ""  # the default as the documentation says it, when it is not a number
    trait: str = ""  # the nbgrader config value it sets (``Section.name``), for a limit

    def read(self, environ: Mapping[str, str] | None = None) -> int | None:
        """Its whole-number value in ``environ`` (default: this process's), else the default."""
        raw = (os.environ if environ is None else environ).get(self.name, "").strip()
        if not raw:
            return self.default
        try:
            return int(raw)
        except ValueError:
            raise SettingError(f"{self.name} must be a whole number, got {raw!r}") from None


# A cell's 120 s are generous: under the training budget a training cell of cnn_experiments takes up to ~45 s
# on 2 busy cores.
CELL_TIMEOUT = Setting("CONVCOURSE_CELL_TIMEOUT", 120, "seconds per cell (then it is interrupted and the notebook "
                       "goes on)", forwarded=True, kernel=False, trait="Execute.timeout")
NOTEBOOK_TIMEOUT = Setting("CONVCOURSE_NOTEBOOK_TIMEOUT", 600, "seconds per notebook (later cells are not run: "
                           "their tests score 0)", forwarded=True, kernel=False, trait="GradingExecute.notebook_timeout")
KERNEL_MEMORY_MB = Setting("CONVCOURSE_KERNEL_MEMORY_MB", 4096, "data-segment cap of each kernel process "
                           "(the kernel's cgroup: twice this)", forwarded=True, kernel=False,
                           trait="SandboxedKernelManager.memory_mb")
KERNEL_TMP_MB = Setting("CONVCOURSE_KERNEL_TMP_MB", 512, "size of its private `/tmp`", forwarded=True, kernel=False,
                        trait="SandboxedKernelManager.tmp_mb")
KERNEL_FILE_MB = Setting("CONVCOURSE_KERNEL_FILE_MB", 1024, "largest file it may write", forwarded=True, kernel=False,
                         trait="SandboxedKernelManager.file_size_mb")
MAX_STEPS = Setting(BUDGET_ENV, GRADING_STEPS, "training budget: every `convcourse.train.fit` in a graded notebook stops "
                    "there (only graded kernels get it)", forwarded=True, kernel=True)
DATA = Setting(DATA_ENV, None, "folder with `MNIST/raw/`, made readable to the kernels (each Dask worker: its own)",
               forwarded=False, kernel=True, shown="per-user cache")
DATASET = Setting(DATASET_ENV, None, "`digits`: the small stand-in dataset, announced (tests only)",
                  forwarded=True, kernel=True, shown="mnist")
ALLOW_UNSANDBOXED = Setting("CONVCOURSE_ALLOW_UNSANDBOXED", None, "`1`: grade even where the sandbox is unavailable",
                            forwarded=True, kernel=False, shown="unset")
COLD_KERNELS = Setting("CONVCOURSE_COLD_KERNELS", None, "`1`: every graded kernel starts cold, none from the "
                       "round's kernel template", forwarded=True, kernel=False, shown="unset")
SCHEDULER = Setting("CONVCOURSE_SCHEDULER", None, "address of a Dask scheduler whose workers grade the round "
                    "(as `--scheduler`)", forwarded=False, kernel=False, shown="local workers")
EXCHANGE = Setting("CONVCOURSE_EXCHANGE", None, "nbgrader's exchange folder on a hub (read by `hub/nbgrader_config.py`; "
                   "the demo hub keeps its own)", forwarded=False, kernel=False, shown="`/srv/nbgrader/exchange`")

SETTINGS = (CELL_TIMEOUT, NOTEBOOK_TIMEOUT, KERNEL_MEMORY_MB, KERNEL_TMP_MB, KERNEL_FILE_MB, MAX_STEPS, DATA, DATASET,
            ALLOW_UNSANDBOXED, COLD_KERNELS, SCHEDULER, EXCHANGE)
FORWARDED = tuple(s.name for s in SETTINGS if s.forwarded)
KERNEL_VISIBLE = tuple(s.name for s in SETTINGS if s.kernel)
TRUE = frozenset({"1", "true", "yes", "on"})


def text(setting: Setting, environ: Mapping[str, str] | None = None) -> str:
    """A setting's raw value, stripped ('' when unset): for the settings that are not numbers."""
    return (os.environ if environ is None else environ).get(setting.name, "").strip()


def switched_on(setting: Setting, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a yes/no setting is set to 1, true, yes or on."""
    return text(setting, environ).lower() in TRUE


def forwarded(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The forwarded settings the grader's environment sets: what a round carries to its jobs."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in FORWARDED if env.get(name, "").strip()}


def check(environ: Mapping[str, str] | None = None) -> None:
    """SettingError for the first setting set to something it cannot be (before a round starts any work)."""
    try:
        step_budget(environ)  # the budget's own rule: a positive count
    except BudgetError as error:
        raise SettingError(str(error)) from None
    for setting in SETTINGS:
        if setting.default is not None:
            setting.read(environ)


def markdown_table(settings: tuple[Setting, ...] = SETTINGS) -> str:
    """The settings as the documentation's Markdown table: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{s.name}` | {s.shown or s.default} | {s.meaning} |" for s in settings]
    return "\n".join(rows)
